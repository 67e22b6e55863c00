import os
import sys

import pytest

# Run against the source tree's package (CSP_TEST_INSTALLED=1: the installed
# one, tests/scripts/python_wheel.sh); meson passes CSP_LIBRARY (the freshly
# built library) and CSP_TEST_HELPER (tests/python/csp_helper.c).
if not os.environ.get("CSP_TEST_INSTALLED"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))


@pytest.fixture
def ctx():
    import csprune as csp
    with csp.Context(seed=7) as c:
        yield c


@pytest.fixture(scope="session")
def helper():
    path = os.environ.get("CSP_TEST_HELPER")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("CSP_TEST_HELPER (the built tests/python/csp_helper) is not set: run "
                    "through `meson test -C build --suite python`")
    return path


def pytest_configure(config):
    # Many tests prune one-shot on purpose (a constant schedule without
    # end_step); the warning itself is tested in test_torch_devices.py.
    config.addinivalue_line(
        "filterwarnings", "ignore:csprune.torch.ModulePruner. no end_step:UserWarning")
