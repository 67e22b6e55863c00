#!/bin/sh
# Install the build to a temporary root, then build examples/minimal.c out of
# tree with CMake through find_package(csp CONFIG) alone: against
# csp::csp_shared, csp::csp_static (when libcsp.a was installed) and csp::csp,
# and run each. Also: the package is found under <libdir>/cmake/csp of the
# staged prefix (so it is relocatable), its version file refuses other majors
# and newer versions, and CSP_PREFER_STATIC turns csp::csp static.
#   consumer_cmake.sh BUILD_DIR MINIMAL_C CC [SANITIZE]
set -eu
build=$1 src=$2 cc=$3 sanitize=${4:-none}
fail() { echo "consumer_cmake: $*" >&2; exit 1; }
command -v cmake >/dev/null 2>&1 || { echo "cmake not found (Debian: cmake): skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
config=$(find "$tmp/root" -name cspConfig.cmake | head -n 1)
[ -n "$config" ] || fail "cspConfig.cmake was not installed"
csp_dir=$(dirname "$config")
[ -f "$csp_dir/cspConfigVersion.cmake" ] || fail "cspConfigVersion.cmake was not installed"
pc=$(find "$tmp/root" -name csp.pc | head -n 1)
libdir_pc=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir csp)
prefix=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=prefix csp)
[ "$csp_dir" = "$tmp/root$libdir_pc/cmake/csp" ] ||
    fail "installed in $csp_dir, not in <libdir>/cmake/csp ($tmp/root$libdir_pc/cmake/csp)"
libdir="$tmp/root$libdir_pc"
have_static=no
[ -f "$libdir/libcsp.a" ] && have_static=yes

mkdir "$tmp/app"
cp "$src" "$tmp/app/minimal.c"
cat >"$tmp/app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(csp_consumer C)

# The version file: other majors and newer versions are refused.
function(expect_refused version)
  find_package(csp ${version} CONFIG QUIET)
  if(csp_FOUND)
    message(FATAL_ERROR "find_package(csp ${version}) accepted libcsp ${csp_VERSION}")
  endif()
endfunction()
expect_refused(1.0)
expect_refused(0.99)

find_package(csp 0.1 CONFIG REQUIRED)
if(NOT csp_DIR STREQUAL EXPECTED_CSP_DIR)
  message(FATAL_ERROR "found ${csp_DIR}, not the staged ${EXPECTED_CSP_DIR}")
endif()
find_package(csp ${csp_VERSION} EXACT CONFIG REQUIRED)
message(STATUS "libcsp ${csp_VERSION} from ${csp_DIR}")

add_executable(minimal_default minimal.c)
target_link_libraries(minimal_default PRIVATE csp::csp)
if(NOT CSP_PREFER_STATIC)
  add_executable(minimal_shared minimal.c)
  target_link_libraries(minimal_shared PRIVATE csp::csp_shared)
  if(WANT_STATIC)
    add_executable(minimal_static minimal.c)
    target_link_libraries(minimal_static PRIVATE csp::csp_static)
  elseif(TARGET csp::csp_static)
    message(FATAL_ERROR "csp::csp_static exists, but no libcsp.a was installed")
  endif()
endif()
CMAKE

flags="-Wall -Wextra -pedantic -Werror"
# A sanitized libcsp needs the sanitizer runtime in the program too.
[ "$sanitize" = none ] || flags="$flags -fsanitize=$sanitize"
gen=""
command -v ninja >/dev/null 2>&1 && gen="-GNinja"

configure() { # build-dir extra-args...
    out=$1
    shift
    # shellcheck disable=SC2086
    cmake -S "$tmp/app" -B "$out" $gen -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_STANDARD=11 \
        -DCMAKE_C_FLAGS="$flags" -DCMAKE_PREFIX_PATH="$tmp/root$prefix" \
        -DEXPECTED_CSP_DIR="$csp_dir" -DWANT_STATIC="$have_static" "$@" \
        >"$out.log" 2>&1 || { cat "$out.log" >&2; fail "cmake configure failed ($*)"; }
    cmake --build "$out" >>"$out.log" 2>&1 || { cat "$out.log" >&2; fail "cmake build failed ($*)"; }
}
loads() { # exe: does it load the staged libcsp.so.0 (through CMake's build rpath)?
    ldd "$1" | grep -q "$libdir/libcsp.so.0"
}

configure "$tmp/b"
loads "$tmp/b/minimal_shared" || { ldd "$tmp/b/minimal_shared" >&2; fail "csp::csp_shared does not load the installed libcsp.so.0"; }
loads "$tmp/b/minimal_default" || fail "csp::csp is not the shared library"
"$tmp/b/minimal_shared" >/dev/null || fail "minimal (csp::csp_shared) failed"
"$tmp/b/minimal_default" >/dev/null || fail "minimal (csp::csp) failed"
ran="csp::csp_shared, csp::csp"
if [ "$have_static" = yes ]; then
    ! ldd "$tmp/b/minimal_static" | grep -q libcsp || fail "csp::csp_static still needs libcsp.so"
    "$tmp/b/minimal_static" >/dev/null || fail "minimal (csp::csp_static) failed"
    configure "$tmp/b_prefer_static" -DCSP_PREFER_STATIC=ON
    ! ldd "$tmp/b_prefer_static/minimal_default" | grep -q libcsp ||
        fail "csp::csp with CSP_PREFER_STATIC still needs libcsp.so"
    "$tmp/b_prefer_static/minimal_default" >/dev/null || fail "minimal (CSP_PREFER_STATIC) failed"
    ran="$ran, csp::csp_static, csp::csp with CSP_PREFER_STATIC"
fi
echo "CMake consumer builds ran: $ran"
