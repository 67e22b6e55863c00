"""speech_compare - the speech benchmark driver behind compare.py and
recipe_study.py (standard library only; Debian's /usr/bin/python3).

    schema   the RESULT line of speech_demo (schema speech-result/3) and its validator
    runner   runs speech_demo (parallel, cached by configuration and binaries)
    stats    mean, sd, paired t-test, exact sign test, formatting
    report   the markdown report of a grid
    plot     error rate against sparsity (gnuplot, else matplotlib)
    recipe   the training-recipe study (docs/results/speech-recipe.md)
"""
