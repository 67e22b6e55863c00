#!/bin/sh
# gradcheck_mutants.sh - shows that test_gradcheck fails when backward is
# broken: builds test_gradcheck against mutated copies of lstm.c (each
# mutation breaks one term of BPTT) and expects every mutant to FAIL.
# Usage: tests/gradcheck_mutants.sh   (from examples/speech; needs gcc, openblas)
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcmut.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/tests"
cp ./*.h "$tmp/"
cp tests/test_gradcheck.c "$tmp/tests/"
CFLAGS="-std=c11 -O2 $(pkg-config --cflags openblas)"
LIBS="$(pkg-config --libs openblas) -lm"
survived=0
killed=0
while IFS= read -r mut; do
    [ -n "$mut" ] || continue
    sed "$mut" lstm.c > "$tmp/lstm.c"
    if cmp -s lstm.c "$tmp/lstm.c"; then
        echo "mutation did not apply: $mut" >&2
        exit 1
    fi
    # shellcheck disable=SC2086
    gcc $CFLAGS -w "$tmp/tests/test_gradcheck.c" "$tmp/lstm.c" $LIBS -o "$tmp/gc"
    if "$tmp/gc" > "$tmp/out"; then
        echo "SURVIVED: $mut"
        survived=$((survived + 1))
    else
        echo "killed:   $mut ($(tail -1 "$tmp/out"))"
        killed=$((killed + 1))
    fi
done <<'MUTANTS'
s/dc\[j\] = dcj \* f_;/dc[j] = dcj;/
s/r < nb ? ws->dhrec + r \* H : ws->zeros/ws->zeros/
s/gg\[j\] = dcj \* i_ \* (1.0f - g_ \* g_);/gg[j] = dcj * i_;/
s/go\[j\] = dh \* t_ \* o_ \* (1.0f - o_);/go[j] = dh * t_ * o_;/
s/(int)(R - r1), 1.0f/(int)(R - r1), 0.5f/
s/ws->dpool\[r \* H + j\] \*= s;/ws->dpool[r * H + j] *= 1.0f;/
s/memcpy(gbh, gbi, (size_t)G \* sizeof(float));/memset(gbh, 0, (size_t)G * sizeof(float));/
MUTANTS
echo "$killed passed, $survived failed"
[ "$survived" -eq 0 ]
