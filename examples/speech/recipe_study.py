#!/usr/bin/python3
"""recipe_study.py - choose the speech trainer's recipe (gradient masking and
the learning-rate decay after the pruning ramp) on validation splits, then
measure it against the old recipe on the test sets.

    examples/speech/recipe_study.py --jobs 2 --nice 10     # -> docs/results/speech-recipe.md

--phase validation stops after choosing (the report then has no test
numbers). Runs are cached like compare.py's (<build>/speech-runs), so a
second invocation only writes the report. See speech_compare/recipe.py.
"""
import argparse
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from speech_compare import recipe, runner  # noqa: E402


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase", choices=("validation", "all", "long"), default="long",
                    help="validation: choose; all: and test; long (default): and the chosen "
                         "recipe with twice the epochs")
    ap.add_argument("--jobs", type=int, default=2, help="parallel runs (2)")
    ap.add_argument("--nice", type=int, default=10, help="nice -n N for every run (10)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--build", default=os.path.join(runner.ROOT, "build"))
    ap.add_argument("--data", help="data directory (default: speech_demo's resolution)")
    ap.add_argument("--out", default=os.path.join(runner.ROOT, "docs", "results",
                                                  "speech-recipe.md"))
    ap.add_argument("--cache", help="run cache (default <build>/speech-runs)")
    ap.add_argument("--accept-stale", action="store_true",
                    help="use cached runs made by other binaries")
    args = ap.parse_args(argv)
    args.cmdline = " ".join(["examples/speech/recipe_study.py"] +
                            [shlex.quote(a) for a in argv])
    args.build = os.path.abspath(args.build)
    args.demo = os.path.join(args.build, "examples", "speech", "speech_demo")
    args.cache = os.path.abspath(args.cache or os.path.join(args.build, "speech-runs"))
    return args


def validate_round(run, names, speakers):
    entries = run.run_all(recipe.validation_configs(run, names, speakers))
    return entries, recipe.choose(entries, names, speakers)


def main(argv):
    args = parse_args(argv)
    if not os.access(args.demo, os.X_OK):
        sys.exit(f"recipe_study.py: {args.demo} not found: build first")
    data = runner.resolve_data(args.demo, args.data)
    if data is None:
        sys.exit("recipe_study.py: no data")
    speakers = data["speakers"]
    run = runner.Runner(args.demo, args.build, args.cache, data, jobs=args.jobs,
                        epochs=args.epochs, accept_stale=args.accept_stale, nice=args.nice)
    t0 = time.monotonic()
    first = list(recipe.FIRST_ROUND)
    entries, (_best, scores) = validate_round(run, first, speakers)
    extra = recipe.second_round(scores)
    recipe.RECIPES.update(extra)
    second = list(extra)
    more, (chosen, scores) = validate_round(run, first + second, speakers)
    entries = more  # the second call returns every validation run, cached or new
    print(f"recipe_study.py: validation chose {chosen} (scores "
          + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()) + ")", flush=True)
    long_entries = []
    if args.phase != "validation" and chosen:
        entries += run.run_all(recipe.test_configs(run, chosen, speakers))
    if args.phase == "long" and chosen:
        run_long = runner.Runner(args.demo, args.build, args.cache, data, jobs=args.jobs,
                                 epochs=recipe.LONG_EPOCHS, accept_stale=args.accept_stale,
                                 nice=args.nice)
        long_entries = run_long.run_all(recipe.long_configs(run_long, chosen))
        run.failed += run_long.failed
    text = recipe.render(cmdlines=[args.cmdline], data=data,
                         entries=[runner.portable(e, data) for e in entries], first=first,
                         second=second, chosen=chosen, scores=scores, speakers=speakers,
                         runner=run, commit=runner.git_commit(),
                         long_entries=[runner.portable(e, data) for e in long_entries])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"recipe_study.py: {len(entries) + len(long_entries)} runs, "
          f"{(time.monotonic() - t0) / 60:.1f} min; "
          f"wrote {args.out}")
    for label, rc, tail in run.failed:
        print(f"FAILED {label} (exit {rc}):\n{tail}", file=sys.stderr)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
