#!/bin/sh
# run_tests.sh - build and run the speech trainer's tests with the C compiler
# alone, with ASan/UBSan where the toolchain has them (meson's suite `speech`
# runs the same tests and the demo's: meson test -C build --suite speech).
# Usage: examples/speech/tests/run_tests.sh [BUILD_DIR]
#   BUILD_DIR defaults to <repo>/build/speech-tests (never the source tree).
# Data: $CSP_SPEECH_DATA, else <repo>/../shared/data/fsdd (FSDD); the tests
# that need it, numpy (/usr/bin/python3) or espeak-ng+sox are skipped when
# those are missing. Prints "N passed, N failed, N skipped".
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
repo=$(cd "$src/../.." && pwd)
out=${1:-$repo/build/speech-tests}
mkdir -p "$out"
CC=${CC:-gcc}
BLAS_CFLAGS=$(pkg-config --cflags openblas)
BLAS_LIBS=$(pkg-config --libs openblas)
WARN="-std=c11 -Wall -Wextra -pedantic -Werror"
export OPENBLAS_NUM_THREADS=1

pass=0
fail=0
skip=0
ok() { pass=$((pass + 1)); echo "PASS: $1"; }
ko() { fail=$((fail + 1)); echo "FAIL: $1"; }
sk() { skip=$((skip + 1)); echo "SKIP: $1 ($2)"; }
run() { # name, command...
    name=$1
    shift
    if "$@" > "$out/$name.log" 2>&1; then ok "$name"; else ko "$name"; sed 's/^/    /' "$out/$name.log" | tail -20; fi
}

# Sanitizers when the toolchain has them.
SAN=""
if echo 'int main(void){return 0;}' > "$out/san.c" &&
   $CC -fsanitize=address,undefined "$out/san.c" -o "$out/san" 2>/dev/null; then
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
fi

S="$src"
build() { # output, flags, sources...
    o=$1
    f=$2
    shift 2
    # shellcheck disable=SC2086
    $CC $WARN $f $BLAS_CFLAGS "$@" $BLAS_LIBS -lm -o "$out/$o"
}
run build_test_wav build test_wav "-O1 -g $SAN" "$S/tests/test_wav.c" "$S/wav.c"
run build_test_logmel build test_logmel "-O1 -g $SAN" "$S/tests/test_logmel.c" "$S/logmel.c"
run build_test_dataset build test_dataset "-O1 -g $SAN" "$S/tests/test_dataset.c" "$S/dataset.c" "$S/logmel.c" "$S/wav.c"
run build_test_gradcheck build test_gradcheck "-O2" "$S/tests/test_gradcheck.c" "$S/lstm.c"
run build_test_train build test_train "-O1 -g $SAN" "$S/tests/test_train.c" "$S/train.c" "$S/lstm.c" "$S/dataset.c" "$S/logmel.c" "$S/wav.c"
run build_feat_dump build feat_dump "-O2" "$S/tests/feat_dump.c" "$S/logmel.c" "$S/wav.c"
run build_train_dense build train_dense "-O3 -fno-math-errno" "$S/train_dense.c" "$S/train.c" "$S/lstm.c" "$S/dataset.c" "$S/logmel.c" "$S/wav.c"

fsdd=${CSP_SPEECH_DATA:-$repo/../shared/data/fsdd}
[ -d "$fsdd" ] || fsdd=""

# espeak-ng fallback data (small: 4 takes per digit per voice).
espeak=""
if command -v espeak-ng >/dev/null 2>&1 && command -v sox >/dev/null 2>&1; then
    if [ -f "$out/espeak-digits/9_rpm1_5.wav" ] ||
       "$S/gen_espeak_digits.sh" "$out/espeak-digits" 6 > "$out/gen_espeak.log" 2>&1; then
        ok gen_espeak_digits
        espeak="$out/espeak-digits"
    else
        ko gen_espeak_digits
        cat "$out/gen_espeak.log"
    fi
else
    sk gen_espeak_digits "espeak-ng or sox not installed"
fi

run test_wav "$out/test_wav" $fsdd $espeak
run test_logmel "$out/test_logmel"
run test_gradcheck "$out/test_gradcheck"
run test_train "$out/test_train"
# shellcheck disable=SC2086
run test_dataset "$out/test_dataset" ${fsdd:+--fsdd "$fsdd"} $espeak
[ -n "$fsdd" ] || sk fsdd_checks "FSDD not found"

if [ -n "$fsdd" ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    files=""
    for f in 0_george_0 3_jackson_12 5_nicolas_33 7_theo_40 9_yweweler_5 8_theo_27 1_george_49; do
        [ -f "$fsdd/$f.wav" ] && files="$files $fsdd/$f.wav"
    done
    # shellcheck disable=SC2086
    run features_vs_numpy sh -c "'$out/feat_dump' '$out/feat.bin' $files && /usr/bin/python3 '$S/tests/ref_features.py' '$out/feat.bin' $files"
elif [ -n "$espeak" ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    files="$espeak/0_usm3_0.wav $espeak/4_gbf3_3.wav $espeak/9_rpm1_5.wav"
    run features_vs_numpy sh -c "'$out/feat_dump' '$out/feat.bin' $files && /usr/bin/python3 '$S/tests/ref_features.py' '$out/feat.bin' $files"
else
    sk features_vs_numpy "no data or no numpy"
fi

run gradcheck_mutants "$S/tests/gradcheck_mutants.sh"

data=${fsdd:-$espeak}
if [ -n "$data" ]; then
    run train_dense_smoke "$out/train_dense" --data "$data" --epochs 1 --hidden 32
else
    sk train_dense_smoke "no data"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
