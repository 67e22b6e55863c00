#!/bin/sh
# Regenerate the committed seed corpus of the fuzz targets from the library
# itself (valid checkpoints and exports: tests/fuzz/fuzz_*.c, csp_fuzz_seed):
#   sh tests/fuzz/make_corpus.sh [BUILD_DIR]     (default: build)
# Run it after a change of the formats and commit tests/fuzz/corpus/.
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build}
ninja -C "$build" tests/fuzz/fuzz_checkpoint_driver tests/fuzz/fuzz_export_driver
for t in checkpoint export; do
    dir=tests/fuzz/corpus/$t
    rm -rf "$dir"
    mkdir -p "$dir"
    "$build/tests/fuzz/fuzz_${t}_driver" --write-corpus "$dir"
    "$build/tests/fuzz/fuzz_${t}_driver" --valid "$dir"
done
