#!/bin/sh
# `pip install .` into a fresh virtual environment (with the system site
# packages, for numpy and torch), offline: Debian's setuptools and wheel,
# --no-build-isolation --no-deps. The packaging files are copied first so the
# source tree is left as it was. Then:
#   1. the installed package finds libcsp through pkg-config (a csp.pc naming
#      the built library's directory; CSP_LIBRARY unset) and prunes;
#   2. tests/python/test_core.py and test_torch.py run against it;
#   3. a wheel built with CSP_BUNDLE_LIBRARY, installed into a second virtual
#      environment, loads its bundled copy.
# Skipped (exit 77) without python3-venv, -setuptools, -wheel or -pip, and in
# sanitized builds.
set -eu
src=$1 lib=$2 python=$3 sanitize=${4:-none}
if [ "$sanitize" != none ]; then
    echo "sanitized build ($sanitize): skipped (the unsanitized builds run it)"
    exit 77
fi
if ! "$python" -c 'import venv, ensurepip, setuptools, wheel, pip' 2>/dev/null; then
    echo "python3-venv, python3-setuptools, python3-wheel or python3-pip missing: skipped"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "python_wheel: $*" >&2; exit 1; }
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1 PYTHONDONTWRITEBYTECODE=1

mkdir -p "$tmp/src/python"
cp "$src/pyproject.toml" "$src/setup.py" "$src/LICENSE" "$tmp/src/"
cp "$src/python/README.md" "$tmp/src/python/"
cp -R "$src/python/csprune" "$tmp/src/python/"
rm -rf "$tmp/src/python/csprune/__pycache__"

cat > "$tmp/smoke.py" <<'PY'
import sys
import numpy as np
import csprune as csp
want_file, want_lib = sys.argv[1], sys.argv[2]
assert csp.__file__.startswith(want_file), csp.__file__
assert csp.library_path.startswith(want_lib) or csp.library_path == want_lib, csp.library_path
w = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
with csp.Context() as ctx:
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5), granularity="row")
    p.add_tensor(w)
    assert p.step(0) == csp.Status.PRUNED and (w == 0).sum() == 64
try:
    import torch
    import csprune.torch
except ImportError:
    pass
else:
    m = torch.nn.Linear(16, 8)
    mp = csprune.torch.ModulePruner(m, final_sparsity=0.5, end_step=-1)
    mp.step()
    assert (m.weight == 0).sum() == 64
print("csprune", csp.__version__, "from", csp.__file__, "loads", csp.library_path)
PY

# 1. pip install . ; libcsp through pkg-config
"$python" -m venv --system-site-packages "$tmp/venv"
(cd "$tmp/src" && "$tmp/venv/bin/python" -m pip install -q --no-build-isolation --no-deps .) \
    || fail "pip install . failed"
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -f "$site/csprune/torch.py" ] || fail "csprune was not installed into the virtual environment"
mkdir "$tmp/pc"
libdir=$(cd "$(dirname "$lib")" && pwd)
cp "$lib" "$tmp/pc/libcsp.so.0"  # the pkg-config libdir holds the soname
printf 'prefix=%s\nlibdir=%s\nName: csp\nDescription: test\nVersion: 0.1.0\nLibs: -L%s -lcsp\n' \
    "$tmp" "$tmp/pc" "$tmp/pc" > "$tmp/pc/csp.pc"
cd "$tmp"
env -u CSP_LIBRARY PKG_CONFIG_PATH="$tmp/pc" "$tmp/venv/bin/python" smoke.py "$site" \
    "$tmp/pc/libcsp.so.0" || fail "the installed package did not load libcsp through pkg-config"

# 2. the tests, against the installed package
CSP_TEST_INSTALLED=1 CSP_LIBRARY="$libdir/libcsp.so.0" "$tmp/venv/bin/python" -m pytest -q \
    -p no:cacheprovider "$src/tests/python/test_core.py" "$src/tests/python/test_torch.py" \
    || fail "the tests failed against the installed package"

# 3. a wheel with a bundled copy of libcsp
(cd "$tmp/src" && CSP_BUNDLE_LIBRARY="$libdir/libcsp.so.0" "$python" -m pip wheel -q \
    --no-build-isolation --no-deps -w "$tmp/dist" .) || fail "pip wheel failed"
whl=$(ls "$tmp"/dist/csprune-0.1.0-*.whl)
case "$whl" in *-none-any.whl) fail "a wheel with a bundled library must not be pure: $whl" ;; esac
"$python" -m venv --system-site-packages "$tmp/venv2"
"$tmp/venv2/bin/python" -m pip install -q --no-deps "$whl" || fail "installing $whl failed"
site2=$("$tmp/venv2/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
env -u CSP_LIBRARY PKG_CONFIG_PATH=/nonexistent "$tmp/venv2/bin/python" smoke.py "$site2" \
    "$site2/csprune/libcsp.so.0" || fail "the wheel did not load its bundled libcsp"
echo "python_wheel: pip install ., the tests and a bundled wheel work"
