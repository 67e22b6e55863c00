#!/bin/sh
# Install the Debian packages a job needs, only those missing.
#   sh tools/deps.sh build|test|demo|ci ...
# Runs apt-get as root, or through sudo for another user.
set -eu

pkgs_build="gcc g++ libc6-dev make meson ninja-build pkg-config libopenblas-dev"
# python3-sklearn: the OMP cross-check against orthogonal_mp_gram (skipped without it).
# python3-setuptools, -wheel, -venv, -pip: `pip install .` into a fresh virtual
# environment (test python_wheel); python3-torchaudio: examples/python/rnnt.py.
# cmake: the consumer_cmake test (find_package(csp CONFIG)); doxygen: the API
# reference and its check (tools/test.sh enables it); gfortran: libgfortran's
# development files, which a static link through `pkg-config --static csp`
# needs on Debian (openblas.pc's Libs.private names -lgfortran).
pkgs_test="check python3 binutils abigail-tools python3-numpy python3-pytest python3-torch python3-torchaudio python3-sklearn python3-setuptools python3-wheel python3-venv python3-pip libopenmpi-dev openmpi-bin cmake doxygen gfortran"
# The demo: python3 runs the comparison driver (standard library only),
# espeak-ng + sox synthesise spoken digits when FSDD is absent, gnuplot-nox
# draws the plot (lighter than python3-matplotlib, which the driver also takes).
pkgs_demo="python3 espeak-ng sox gnuplot-nox"
# .ci/run on top of the test group: valgrind (the unit suites under
# `meson test --setup valgrind`), clang with compiler-rt (libFuzzer,
# ASan/UBSan runtimes) and llvm (llvm-symbolizer for readable crash traces).
pkgs_ci="valgrind clang libclang-rt-14-dev llvm"

want=""
for group in "$@"; do
    case "$group" in
        build) want="$want $pkgs_build" ;;
        test) want="$want $pkgs_build $pkgs_test" ;;
        demo) want="$want $pkgs_build $pkgs_demo" ;;
        ci) want="$want $pkgs_build $pkgs_test $pkgs_ci" ;;
        *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    case " $missing " in *" $p "*) continue ;; esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "deps.sh: need root (or sudo) to install:$missing" >&2
    exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -qq
# shellcheck disable=SC2086
$as_root apt-get install -y -qq --no-install-recommends $missing
