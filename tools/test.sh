#!/bin/sh
# Set up and run the whole test suite on a Debian 12 machine:
#   sh tools/test.sh
# Installs missing Debian packages, configures a build with warnings as
# errors and runs `meson test`. Environment:
#   CSP_BUILD_DIR   build directory (default build-test)
#   CSP_MESON_ARGS  extra `meson setup` arguments (e.g. sanitizers)
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh test
build=${CSP_BUILD_DIR:-build-test}
# shellcheck disable=SC2086
if [ -d "$build" ]; then
    meson setup --reconfigure "$build" -Dwerror=true ${CSP_MESON_ARGS:-}
else
    meson setup "$build" -Dwerror=true ${CSP_MESON_ARGS:-}
fi
ninja -C "$build"
meson test -C "$build" --print-errorlogs
