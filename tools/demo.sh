#!/bin/sh
# Set up and run the main job on a Debian 12 machine:
#   sh tools/demo.sh
# Installs missing Debian packages, builds libcsp and runs the demo.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh demo
build=${CSP_BUILD_DIR:-build}
[ -d "$build" ] || meson setup "$build" -Dtests=false -Dbench=false
ninja -C "$build"
"$build/examples/minimal"
