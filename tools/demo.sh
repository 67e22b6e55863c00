#!/bin/sh
# The main job on a Debian 12 machine, from the root of the source tree:
#   sh tools/demo.sh [compare.py flags, e.g. --grid full]
# Installs the missing Debian packages (build tools, OpenBLAS, python3,
# espeak-ng, sox, gnuplot-nox), builds libcsp and the speech trainer, then
# trains the LSTM digit recogniser on spoken digits with dense training,
# row-balanced GMP and the CSP variant csp-obs (reduced grid: sparsity 0.95,
# seed 1, official FSDD split; the library's default is GMP) and writes
# <build>/results/speech.{md,png,json}.
# Data: FSDD from $CSP_SPEECH_DATA or ../shared/data/fsdd; without it,
# spoken digits synthesised by espeak-ng (once, into the build directory).
# Environment: CSP_BUILD_DIR (default build).
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
OPENBLAS_NUM_THREADS=1 "$py" examples/speech/compare.py --build "$build" "$@"
echo "demo: done in $(( $(date +%s) - start )) s"
