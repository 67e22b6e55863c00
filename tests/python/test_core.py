"""The Python binding's core: loading, handshake, errors, context, tensors."""

import ctypes
import gc

import numpy as np
import pytest

import csp


def test_version_and_handshake():
    assert csp.version() == "%d.%d.%d" % csp._lib.VERSION
    assert csp.ABI_VERSION == 0
    assert csp._lib.lib.csp_check_version(csp.ABI_VERSION + 1, 100) == csp.Status.E_VERSION


def test_status_enum_matches_library():
    for s in csp.Status:
        assert csp.status_name(s) == "CSP_" + s.name


def test_context_properties():
    with csp.Context(seed=1234, num_threads=2) as ctx:
        assert ctx.seed == 1234
        assert ctx.num_threads == 2
        ctx.num_threads = 1
        assert ctx.num_threads == 1


def test_error_carries_status_name_and_message():
    with csp.Context() as ctx:
        with pytest.raises(csp.CspError) as e:
            ctx.num_threads = 0
        assert e.value.status == csp.Status.E_RANGE
        assert e.value.name == "CSP_E_RANGE"
        assert "outside" in e.value.message
        assert ctx.last_error == e.value.message


def test_log_hook_receives_errors():
    got = []
    with csp.Context(log=lambda level, msg: got.append((level, msg)),
                     log_level=csp.LogLevel.ERROR) as ctx:
        with pytest.raises(csp.CspError):
            ctx.num_threads = -3
    assert got and got[0][0] == csp.LogLevel.ERROR and "outside" in got[0][1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tensor_is_a_zero_copy_view(dtype):
    rng = np.random.default_rng()
    a = rng.standard_normal((6, 3, 2)).astype(dtype)
    with csp.Context() as ctx:
        t = csp.Tensor(ctx, a, name="conv.weight")
        assert t.shape == a.shape and t.rows == 6 and t.cols == 6
        assert t.name == "conv.weight"
        assert csp._lib.lib.csp_tensor_data(t._handle) == a.ctypes.data


def test_tensor_rejects_what_would_need_a_copy():
    with csp.Context() as ctx:
        a = np.ones((4, 6), np.float32)
        with pytest.raises(ValueError, match="C-contiguous"):
            csp.Tensor(ctx, a.T)
        with pytest.raises(ValueError, match="C-contiguous"):
            csp.Tensor(ctx, a[:, ::2])
        with pytest.raises(TypeError, match="float32 or float64"):
            csp.Tensor(ctx, np.ones(4, np.int32))
        with pytest.raises(TypeError, match="float32 or float64"):
            csp.Tensor(ctx, np.ones(4, np.float16))
        with pytest.raises(TypeError, match="numpy.ndarray"):
            csp.Tensor(ctx, [1.0, 2.0])
        ro = np.ones(4, np.float32)
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            csp.Tensor(ctx, ro)
        with pytest.raises(ValueError, match="rank"):
            csp.Tensor(ctx, np.ones((1, 1, 1, 1, 2), np.float32))


def test_closing_the_context_closes_its_objects():
    ctx = csp.Context()
    t = csp.Tensor(ctx, np.ones(3, np.float32))
    ctx.close()
    assert t._handle is None
    with pytest.raises(ValueError, match="closed"):
        t.name
    ctx.close()  # twice is fine
    del t
    gc.collect()


def test_library_lookup_error_is_clear(monkeypatch):
    monkeypatch.setenv("CSP_LIBRARY", "/nonexistent/libcsp.so.0")
    with pytest.raises(OSError, match="CSP_LIBRARY"):
        csp._lib.load()
