#!/bin/sh
# Write the ABI baseline of a release: tests/abi/libcsp.so.<N>.abi and the
# list of released enumerators, tests/abi/constants.txt.
# Run it only when a release ships (or after a deliberate, soname-bumping
# break); the `abi` and `constants` tests compare every build with them.
set -eu
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
ninja -C "$build" >/dev/null
lib=$(ls "$build"/lib/libcsp.so.*.*.* | head -n 1)
so=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
abidw --headers-dir "$root/include/csp" --no-corpus-path --no-comp-dir-path --out-file "$root/tests/abi/$so.abi" "$lib"
echo "wrote tests/abi/$so.abi from $lib"
python3 "$root/tests/scripts/check_constants.py" --include "$root/include/csp" \
    --write "$root/tests/abi/constants.txt"
# The frozen layouts of this release's structs, for the ABI growth test.
release=$(sed -n "s/^ *version: '\([0-9]*\.[0-9]*\)\..*/\1/p" "$root/meson.build" | head -n 1)
python3 "$root/tests/scripts/abi_layouts.py" freeze "$root/include/csp" \
    "$root/tests/abi/layouts-$release.h" "$release"
echo "wrote tests/abi/layouts-$release.h"
