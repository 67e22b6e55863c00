#!/bin/sh
# Set up and run the whole test suite on a Debian 12 machine:
#   sh tools/test.sh
# Installs missing Debian packages, configures a build with warnings as
# errors, both libraries (shared and static: the consumer tests link each)
# and the API reference (docs/api; doxygen is then required, so the docs
# check cannot be skipped here), and runs `meson test`. Environment:
#   CSP_BUILD_DIR   build directory (default build-test)
#   CSP_MESON_ARGS  extra `meson setup` arguments (e.g. sanitizers)
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh test
build=${CSP_BUILD_DIR:-build-test}
setup_args="-Dwerror=true -Ddefault_library=both -Ddocs=enabled"
# shellcheck disable=SC2086
if [ -d "$build" ]; then
    meson setup --reconfigure "$build" $setup_args ${CSP_MESON_ARGS:-}
else
    meson setup "$build" $setup_args ${CSP_MESON_ARGS:-}
fi
ninja -C "$build"
meson test -C "$build" --print-errorlogs
