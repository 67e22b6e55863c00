#!/bin/sh
# Compare the built library's ABI with the committed baseline of the last
# release (tests/abi/libcsp.so.0.abi). Added functions and types are allowed;
# any change or removal of what the baseline has fails. Options structs may
# grow at the end (suppressions.txt says so). A deliberate break needs a
# soname bump, a new baseline (tools/abi-baseline.sh) and a CHANGELOG line.
set -eu
lib=$1 baseline=$2 suppressions=$3 headers=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

abidw --headers-dir "$headers" --no-corpus-path --no-comp-dir-path --out-file "$tmp/current.abi" "$lib"
set +e
abidiff --no-added-syms --suppressions "$suppressions" "$baseline" "$tmp/current.abi" \
    > "$tmp/report.txt" 2>&1
rc=$?
set -e
cat "$tmp/report.txt"
# abidiff's exit status is a bit field: 1 error, 2 usage, 4 ABI change,
# 8 incompatible change. With added symbols left out, any bit fails.
if [ "$rc" -ne 0 ]; then
    echo "ABI check failed (abidiff status $rc) against $baseline" >&2
    exit 1
fi
echo "ABI compatible with the baseline $(basename "$baseline")"
