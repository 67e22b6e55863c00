"""Checkpoints and compressed exports from Python: save/load through bytes and
files (bit-identical resume, errors that change nothing), export in every
format against numpy, decode, info, stats."""

import numpy as np
import pytest

import csprune as csp

G = csp.Granularity
F = csp.ExportFormat


def _model(ctx, seed=3, s_f=0.8):
    rng = np.random.default_rng(seed)
    sched = csp.Schedule.polynomial(ctx, s_f, end_step=20, frequency=4)
    p = csp.Pruner(ctx, sched, granularity="row")
    arrays = [rng.standard_normal((8, 16)).astype(np.float32),
              rng.standard_normal((4, 12)),
              rng.standard_normal((3, 5)).astype(np.float32)]
    p.add_tensor(arrays[0], "fc1")
    p.add_tensor(arrays[1], "fc2", granularity="nm", nm=(2, 4))
    p.add_tensor(arrays[2], "bias", exclude=True)
    return p, arrays, rng


def _train(p, arrays, rng, steps):
    for t in steps:
        for a in arrays:
            a += (0.05 * rng.standard_normal(a.shape)).astype(a.dtype)
        p.step(t)


def test_save_load_resumes_bit_for_bit(ctx, tmp_path):
    p1, a1, rng = _model(ctx)
    _train(p1, a1, rng, range(9))
    ckpt = p1.save()
    assert isinstance(ckpt, bytes) and ckpt[:8] == b"\x89CSPCKPT"
    host = [a.copy() for a in a1]              # the host's own checkpoint
    p1.save_file(tmp_path / "p.ckpt")
    assert (tmp_path / "p.ckpt").read_bytes() == ckpt
    rng_state = rng.bit_generator.state
    _train(p1, a1, rng, range(9, 21))

    for how in ("bytes", "file", "bytearray"):
        p2, a2, rng2 = _model(ctx, seed=99)
        for a, h in zip(a2, host):
            a[...] = h
        if how == "bytes":
            p2.load(ckpt)
        elif how == "file":
            p2.load_file(str(tmp_path / "p.ckpt"))
        else:
            p2.load(bytearray(ckpt))
        assert p2.last_step == 8
        rng2.bit_generator.state = rng_state
        _train(p2, a2, rng2, range(9, 21))
        assert p2.digest() == p1.digest()
        for x, y in zip(a1, a2):
            np.testing.assert_array_equal(x, y)
        # the same state (the statistics' wall-clock seconds aside)
        assert [(s.nnz, s.target_sparsity, s.last_event) for s in p2.stats()] == \
            [(s.nnz, s.target_sparsity, s.last_event) for s in p1.stats()]


def test_load_errors_change_nothing(ctx, tmp_path):
    p1, a1, rng = _model(ctx)
    _train(p1, a1, rng, range(6))
    ckpt = p1.save()
    p2, a2, rng2 = _model(ctx, seed=5)
    _train(p2, a2, rng2, range(2))
    before = p2.save()
    bad = bytearray(ckpt)
    bad[100] ^= 1
    for data, status in [(bytes(bad), csp.Status.E_CORRUPT), (ckpt[:-1], csp.Status.E_CORRUPT),
                         (b"", csp.Status.E_CORRUPT)]:
        with pytest.raises(csp.CspError) as e:
            p2.load(data)
        assert e.value.status == status
    other, _, _ = _model(ctx, s_f=0.7)
    with pytest.raises(csp.CspError) as e:
        other.load(ckpt)
    assert e.value.status == csp.Status.E_STATE and "final_sparsity" in e.value.message
    with pytest.raises(csp.CspError) as e:
        p2.load_file(tmp_path / "missing.ckpt")
    assert e.value.status == csp.Status.E_IO and "No such file" in e.value.message
    assert p2.save() == before


def _expected(weights, mask, dtype):
    return np.where(mask, weights, 0).astype(dtype)


@pytest.mark.parametrize("fmt", [F.CSR, F.BITMAP, F.NM])
@pytest.mark.parametrize("value_dtype", [None, "f32", "f64"])
def test_export_round_trip(ctx, fmt, value_dtype):
    p, arrays, rng = _model(ctx)
    _train(p, arrays, rng, range(21))
    for i in (0, 1, 2):
        if fmt == F.NM and i != 1:
            continue
        blob = p.export(i, fmt, value_dtype=value_dtype)
        info = csp.export_info(blob)
        want_dtype = (np.float32 if arrays[i].dtype == np.float32 else np.float64) \
            if value_dtype is None else (np.float32 if value_dtype == "f32" else np.float64)
        assert info.format == fmt and info.shape == arrays[i].shape
        assert info.nnz == p.nnz(i) and info.bytes == len(blob)
        assert info.nm == ((2, 4) if fmt == F.NM else None)
        dense = csp.export_decode(blob)
        assert dense.dtype == want_dtype and dense.shape == arrays[i].shape
        np.testing.assert_array_equal(dense, _expected(arrays[i], p.mask(i), want_dtype))
        np.testing.assert_array_equal(csp.export_decode(blob, "f64"),
                                      dense.astype(np.float64))
        st = p.export_stats(i, fmt, value_dtype=value_dtype)
        assert st.bytes == len(blob) and st.nnz == p.nnz(i)
        assert st.dense_bytes == arrays[i].nbytes
        assert st.header_bytes + st.index_bytes + st.value_bytes == st.bytes


def test_export_errors(ctx):
    p, arrays, rng = _model(ctx)
    _train(p, arrays, rng, range(21))
    with pytest.raises(csp.CspError) as e:
        p.export(0, "nm")                     # a row-pruned tensor has no N:M
    assert e.value.status == csp.Status.E_STATE
    with pytest.raises(csp.CspError) as e:
        p.export(0, "nm", nm=(1, 4))          # 0.8 of 16 per row is not 1:4
    assert e.value.status == csp.Status.E_STATE and "is not 1:4" in e.value.message
    with pytest.raises(ValueError):
        p.export(0, "coo")
    with pytest.raises(csp.CspError):
        p.export(7)
    blob = p.export(0)
    with pytest.raises(csp.CspError) as e:
        csp.export_decode(blob[:-8])
    assert e.value.status == csp.Status.E_CORRUPT
    total = p.export_stats(None)
    assert total.numel == arrays[0].size + arrays[1].size  # excluded tensors not counted
