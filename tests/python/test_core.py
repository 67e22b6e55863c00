"""The Python binding's core: loading, handshake, errors, context, tensors."""

import gc

import numpy as np
import pytest

import csprune as csp


def test_version_and_handshake():
    assert csp.version() == "%d.%d.%d" % csp._lib.VERSION
    assert csp.ABI_VERSION == 0
    assert csp._lib.lib.csp_check_version(csp.ABI_VERSION + 1, 100) == csp.Status.E_VERSION


def test_status_enum_matches_library():
    for s in csp.Status:
        assert csp.status_name(s) == "CSP_" + s.name
    assert csp.status_name(-1000) == "CSP_UNKNOWN_STATUS"


def test_enum_conversion():
    to_enum = csp._core.to_enum
    assert to_enum(csp.Granularity, "row", "g") is csp.Granularity.ROW
    assert to_enum(csp.Granularity, "NM", "g") is csp.Granularity.NM
    assert to_enum(csp.Granularity, 3, "g") is csp.Granularity.GLOBAL
    for bad in (0, 5, -1, "rows", ""):
        with pytest.raises(ValueError, match="unknown g"):
            to_enum(csp.Granularity, bad, "g")
    for bad in (1.0, None, True):
        with pytest.raises(TypeError):
            to_enum(csp.Granularity, bad, "g")
    with pytest.raises(ValueError, match="log_level"):
        csp.Context(log_level=9)


def test_context_error_state():
    with csp.Context() as ctx:
        assert ctx.last_status == csp.Status.OK and ctx.last_error == ""
        with pytest.raises(csp.CspError):
            ctx.num_threads = csp.MAX_THREADS + 1
        assert ctx.last_status == csp.Status.E_RANGE
        ctx.clear_error()
        assert ctx.last_status == csp.Status.OK and ctx.last_error == ""


def test_set_log_replaces_the_hook():
    first, second = [], []
    with csp.Context(log=lambda lv, m: first.append(m), log_level="error") as ctx:
        ctx.set_log(lambda lv, m: second.append(m), csp.LogLevel.ERROR)
        with pytest.raises(csp.CspError):
            ctx.num_threads = 0
        ctx.set_log(None)
        with pytest.raises(csp.CspError):
            ctx.num_threads = 0
    assert not first and len(second) == 1


def test_log_hook_that_raises_does_not_break_the_call():
    def bad(level, msg):
        raise RuntimeError("log hook failure")
    with csp.Context(log=bad, log_level=csp.LogLevel.DEBUG) as ctx:
        with pytest.raises(csp.CspError) as e:
            ctx.num_threads = 0
        assert e.value.status == csp.Status.E_RANGE


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
            csp.Tensor(ctx, np.ones((), np.float32))


def test_tensor_above_rank_4_is_folded_without_copy():
    a = np.zeros((3, 2, 2, 2, 5), np.float32)
    with csp.Context() as ctx:
        t = csp.Tensor(ctx, a)
        assert t.shape == a.shape
        assert csp._lib.lib.csp_tensor_rank(t._handle) == 4
        assert csp._lib.lib.csp_tensor_dim(t._handle, 3) == 10
        assert t.rows == 3 and t.cols == 40 and t.data_ptr == a.ctypes.data


def test_tensor_set_data_checks_layout():
    a, b = np.ones((4, 6), np.float32), np.zeros((4, 6), np.float32)
    with csp.Context() as ctx:
        t = csp.Tensor(ctx, a)
        t.set_data(b)
        assert t.data_ptr == b.ctypes.data and t.buffer is b
        with pytest.raises(ValueError, match="same shape and dtype"):
            t.set_data(np.zeros((6, 4), np.float32))
        with pytest.raises(ValueError, match="same shape and dtype"):
            t.set_data(np.zeros((4, 6), np.float64))


def test_tensor_name_limit(ctx):
    csp.Tensor(ctx, np.ones(2, np.float32), name="x" * csp.MAX_NAME)
    with pytest.raises(ValueError, match="at most"):
        csp.Tensor(ctx, np.ones(2, np.float32), name="x" * (csp.MAX_NAME + 1))


def test_closed_objects_raise():
    ctx = csp.Context()
    ctx.close()
    assert ctx.closed
    for get in (lambda: ctx.seed, lambda: ctx.num_threads, lambda: ctx.last_error,
                lambda: csp.Tensor(ctx, np.ones(2, np.float32))):
        with pytest.raises(ValueError, match="Context is closed"):
            get()


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
