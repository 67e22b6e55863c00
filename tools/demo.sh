#!/bin/sh
# The main job on a Debian 12 machine, from the root of the source tree:
#   sh tools/demo.sh [examples/rnnt/compare.py flags, e.g. --grid paper]
# Installs the missing Debian packages (build tools, OpenBLAS, python3,
# espeak-ng, sox, gnuplot-nox), builds libcsp and the examples, then trains
# the RNN-T connected-digit recogniser (examples/rnnt) dense, with
# row-balanced GMP and with the CSP variant csp-obs (quick grid: sparsity
# 0.9, seed 1, official FSDD split), printing per-epoch progress, and writes
# <build>/results/rnnt.{md,json} (WER table, plot when gnuplot is there,
# compressed size, csp_step() time share). Then, only while the whole demo
# stays under about 15 minutes, the small LSTM digit classifier's reduced
# grid (examples/speech) into <build>/results/speech.{md,png,json}.
# Data: FSDD from $CSP_SPEECH_DATA or ../shared/data/fsdd; without it,
# digit strings synthesised by espeak-ng (once, into the build directory).
# Environment: CSP_BUILD_DIR (default build), CSP_DEMO_BUDGET (seconds, 900).
set -eu
cd "$(dirname "$0")/.."
start=$(date +%s)
sh tools/deps.sh demo
build=${CSP_BUILD_DIR:-build}
[ -d "$build" ] || meson setup "$build" -Dtests=disabled -Dbench=disabled
ninja -C "$build"
"$build/examples/minimal" >/dev/null
py=/usr/bin/python3
[ -x "$py" ] || py=python3
OPENBLAS_NUM_THREADS=1 "$py" examples/rnnt/compare.py --build "$build" \
    --out "$build/results/rnnt.md" "$@"
el=$(( $(date +%s) - start ))
budget=${CSP_DEMO_BUDGET:-900}
# the classifier's reduced grid takes 1-2 minutes on 2 cores
if [ $(( el + 150 )) -le "$budget" ]; then
    echo "demo: RNN-T done in $el s; now the digit classifier (examples/speech)"
    OPENBLAS_NUM_THREADS=1 "$py" examples/speech/compare.py --build "$build"
else
    echo "demo: RNN-T took $el s; skipping the digit classifier (budget $budget s;" \
         "run examples/speech/compare.py --build $build by hand)"
fi
echo "demo: done in $(( $(date +%s) - start )) s"
