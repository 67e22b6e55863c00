#!/bin/sh
# libcsp as a meson subproject of a tiny parent project written here: the
# parent has a wrap file providing `csp` and builds examples/minimal.c with
# dependency('csp') (libcsp's meson.override_dependency) with the parent's
# default_library static, shared and both, and runs it. libcsp must
# build its library and nothing else (no tests, examples, benchmarks, Python
# package or docs), and the parent must get the library kind it asked for
# (the shared one with both).
#   consumer_meson.sh SOURCE_ROOT MINIMAL_C PYTHON [SANITIZE]
# The parent builds without sanitizers whatever the calling build's: in a
# sanitized build (SANITIZE not none) it would repeat the plain build's run,
# so it is skipped there.
set -eu
src=$1 minimal=$2 python=$3 sanitize=${4:-none}
fail() { echo "consumer_meson: $*" >&2; exit 1; }
[ "$sanitize" = none ] || { echo "b_sanitize=$sanitize: the plain build runs this test; skipped"; exit 77; }
command -v meson >/dev/null 2>&1 || { echo "meson not on PATH: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/parent/subprojects"
# A symlink to this source tree stands for the checkout a wrap would fetch.
ln -s "$src" "$tmp/parent/subprojects/csp"
cat >"$tmp/parent/subprojects/csp.wrap" <<'WRAP'
[wrap-file]
directory = csp

[provide]
dependency_names = csp
WRAP
cp "$minimal" "$tmp/parent/minimal.c"

for kind in static shared both; do
    cat >"$tmp/parent/meson.build" <<MESON
project('csp_parent', 'c', version: '1.0',
  default_options: ['c_std=c11', 'warning_level=3', 'werror=true', 'default_library=$kind'])
csp_dep = dependency('csp', version: '>= 0.1')
minimal = executable('minimal', 'minimal.c', dependencies: csp_dep)
test('minimal', minimal)
MESON
    build="$tmp/build-$kind"
    # --force-fallback-for: the subproject even where a csp.pc is installed.
    meson setup "$build" "$tmp/parent" --force-fallback-for=csp >"$tmp/setup.log" 2>&1 ||
        { cat "$tmp/setup.log" >&2; fail "meson setup failed (default_library=$kind)"; }
    grep -q "^Executing subproject csp" "$tmp/setup.log" &&
        grep -q "^Dependency csp found: YES .*(overridden)" "$tmp/setup.log" ||
        { cat "$tmp/setup.log" >&2; fail "dependency('csp') did not come from the subproject"; }
    ninja -C "$build" >"$tmp/build.log" 2>&1 ||
        { cat "$tmp/build.log" >&2; fail "the parent did not build (default_library=$kind)"; }

    # What libcsp built, installs and registers, from meson's introspection.
    (cd "$build" && meson introspect --targets --tests --installed) >"$tmp/intro.json"
    "$python" - "$tmp/intro.json" "$kind" <<'PY'
import json, sys
intro = json.load(open(sys.argv[1]))
kind = sys.argv[2]
targets = {(t["name"], t["type"]) for t in intro["targets"] if t["subproject"] == "csp"}
want = {("csp_internal", "static library")}
if kind in ("shared", "both"):
    want.add(("csp", "shared library"))
if kind in ("static", "both"):
    want.add(("csp", "static library"))
if targets != want:
    sys.exit(f"libcsp as a subproject built {sorted(targets)}, want {sorted(want)}")
tests = [t["name"] for t in intro["tests"]]
if tests != ["minimal"]:
    sys.exit(f"tests registered: {tests}, want only the parent's ['minimal']")
bad = [p for p in intro["installed"].values()
       if "csprune" in p or "/doc/" in p or "/man3/" in p]
if bad:
    sys.exit(f"libcsp as a subproject installs {bad}")
PY

    exe="$build/minimal"
    if [ "$kind" = static ]; then
        ! ldd "$exe" | grep -q libcsp || fail "default_library=static, but minimal loads libcsp.so"
    else
        ldd "$exe" | grep -q "$build/subprojects/csp/lib/libcsp.so.0" ||
            { ldd "$exe" >&2; fail "default_library=$kind, but minimal does not load the subproject's libcsp.so.0"; }
    fi
    "$exe" >"$tmp/run.log" || { cat "$tmp/run.log" >&2; fail "minimal failed (default_library=$kind)"; }
    echo "default_library=$kind: $(tail -n 2 "$tmp/run.log" | head -n 1)"
done
echo "libcsp as a meson subproject: static, shared and both parents built and ran minimal.c"
