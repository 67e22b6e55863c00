#!/usr/bin/env python3
"""An independent reader of docs/formats.md (standard library only:
struct, zlib) against what libcsp writes: the checkpoint's header, table,
CRCs and sections, and every export format decoded here and compared with
the library's own decoding and with the weights through the mask.
    formats_check.py FORMATS_TOOL"""

import math
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path


def pad8(n):
    return (n + 7) // 8 * 8


def check_checkpoint(b, masks):
    assert b[:8] == b"\x89CSPCKPT", "magic"
    major, minor, hs, fsize, count, flags, _writer = struct.unpack_from("<HHIQIII", b, 8)
    assert (major, minor, hs, flags) == (1, 0, 48, 0)
    assert b[36:44] == bytes(8), "reserved header bytes"
    assert fsize == len(b)
    assert struct.unpack_from("<I", b, hs - 4)[0] == zlib.crc32(b[: hs - 4]), "header CRC"
    assert struct.unpack_from("<I", b, fsize - 8)[0] == zlib.crc32(b[: fsize - 8]), "file CRC"
    assert b[-4:] == b"CSPE"
    pos = pad8(hs + 40 * count)
    sections = {}
    for i in range(count):
        tag, fl, ver, crc, off, ln, res = struct.unpack_from("<4sIIIQQQ", b, hs + 40 * i)
        assert off == pos and res == 0 and fl == (0 if tag == b"STAT" else 1)
        assert ver == (2 if tag in (b"CSPC", b"STAT") else 1), (tag, ver)
        assert crc == zlib.crc32(b[off : off + ln]), tag
        assert all(x == 0 for x in b[off + ln : pad8(off + ln)])
        sections[tag] = b[off : off + ln]
        pos = pad8(off + ln)
    assert pos == fsize - 8
    assert list(sections) == [b"PRUN", b"TNSR", b"MASK", b"CSPC", b"STAT"]

    n, r0, last_step, last_event, kind, r1, si, sf, p, t0, t1, dt = struct.unpack(
        "<IIqqiidddqqq", sections[b"PRUN"])
    assert (n, last_step, last_event, kind) == (2, 7, 5, 2), (n, last_step, last_event, kind)
    assert r0 == r1 == 0, "PRUN reserved"
    assert (si, sf, p, t0, t1, dt) == (0.0, 0.7, 3.0, 0, 10, 5)

    t = sections[b"TNSR"]
    assert struct.unpack_from("<II", t, 0) == (2, 0)
    o = 8
    recs = []
    for _ in range(2):
        dtype, rank, gran, excl, nm_n, nm_m, name_len, group, res = struct.unpack_from(
            "<BBBBBBHiI", t, o)
        assert res == 0, "TNSR reserved"
        shape = struct.unpack_from("<4q", t, o + 16)
        override, nnz, target, tev = struct.unpack_from("<dqdq", t, o + 48)
        name = t[o + 80 : o + 80 + name_len].decode()
        recs.append((dtype, rank, gran, excl, nm_n, nm_m, group, shape, override, nnz, tev, name))
        o += 80 + pad8(name_len)
    assert o == len(t)
    # N:M is 0:0 for a tensor without N:M granularity (row here); final_sparsity
    # is the tensor's own, here the schedule's s_f
    assert recs[0] == (1, 2, 2, 0, 0, 0, 0, (7, 40, 0, 0), 0.7, recs[0][9], 5, "layer0.weight")
    assert recs[1][:8] == (2, 3, 4, 0, 2, 4, 0, (6, 4, 4, 0)) and recs[1][11] == ""

    m = sections[b"MASK"]
    o = 0
    for i, numel in enumerate((280, 96)):
        idx, res, num, nnz = struct.unpack_from("<IIqq", m, o)
        assert (idx, res, num) == (i, 0, numel)
        raw = m[o + 24 : o + 24 + (numel + 7) // 8]
        bits = [(raw[k // 8] >> (k % 8)) & 1 for k in range(numel)]
        assert bits == list(masks[i]), f"mask {i}"
        assert sum(bits) == nnz == recs[i][9]
        o += 24 + pad8((numel + 7) // 8)
    assert o == len(m)

    c = sections[b"CSPC"]
    count, per, wide, zero, seed = struct.unpack_from("<IIIIQ", c, 0)
    assert (count, zero, seed) == (2, 0, 0) and per > 20 and wide == 6

    def records(o, k):
        out = {}
        for _ in range(k):
            ln = c[o]
            name = c[o + 1 : o + 1 + ln].decode()
            typ, bits = struct.unpack_from("<BQ", c, o + 1 + ln)
            val = struct.unpack("<d", struct.pack("<Q", bits))[0] if typ == 4 else bits
            out[name] = val
            o += 1 + ln + 9
        return o, out

    o, pruner_wide = records(24, wide)
    assert pruner_wide == {"observe_window": 0, "adapt_bound": 0.0, "adapt_initial": 1.0,
                           "adapt_max": 3.0, "adapt_grow": 2.0, "adapt_shrink": 0.1}
    for i in range(count):  # two GMP tensors: no CSP state, identity sensing
        has_cs, attached, r16, r32 = struct.unpack_from("<BBHI", c, o)
        assert (has_cs, attached, r16, r32) == (0, 0, 0, 0)
        o, opts = records(o + 8, per)
        assert opts["sensing.kind"] == 1 and opts["solver.max_iter"] == 1000
        assert opts["solver.tol"] == 1e-4 and opts["granularity"] == (2, 4)[i]
    assert o == len(c)

    st = sections[b"STAT"]
    steps, events = struct.unpack_from("<qq", st, 0)
    assert (steps, events) == (8, 2), (steps, events)
    assert struct.unpack_from("<I", st, 48)[0] == 2 and len(st) == 56 + 80 * 2
    for i in range(2):
        assert struct.unpack_from("<q", st, 56 + 80 * i + 48)[0] == 2  # events per tensor


def decode_export(b):
    assert b[:4] == b"CSPX"
    ver, hs, fmt, vd, rank, ib, pb, n, m, res = struct.unpack_from("<HHBBBBBBBB", b, 4)
    rows, cols, nnz = struct.unpack_from("<QQQ", b, 16)
    shape = struct.unpack_from("<4Q", b, 40)
    assert (ver, hs, res) == (1, 80, 0)
    assert struct.unpack_from("<I", b, 76)[0] == zlib.crc32(b[80:], zlib.crc32(b[:76])), "CRC"
    assert rows * cols == math.prod(shape[:rank]) and all(s == 0 for s in shape[rank:])
    vfmt, vs = ("<f", 4) if vd == 1 else ("<d", 8)
    dense = [0.0] * (rows * cols)
    pos = 80
    if fmt == 1:
        ptr = [int.from_bytes(b[pos + k * pb : pos + (k + 1) * pb], "little") for k in range(rows + 1)]
        pos = pad8(pos + (rows + 1) * pb)
        idx = [int.from_bytes(b[pos + k * ib : pos + (k + 1) * ib], "little") for k in range(nnz)]
        assert ib == (2 if cols < 65536 else 4)
        pos = pad8(pos + nnz * ib)
        for r in range(rows):
            for k in range(ptr[r], ptr[r + 1]):
                dense[r * cols + idx[k]] = struct.unpack_from(vfmt, b, pos + k * vs)[0]
        pos = pad8(pos + nnz * vs)
    elif fmt == 2:
        nb = (rows * cols + 7) // 8
        bitmap = b[pos : pos + nb]
        pos = pad8(pos + nb)
        k = 0
        for i in range(rows * cols):
            if (bitmap[i // 8] >> (i % 8)) & 1:
                dense[i] = struct.unpack_from(vfmt, b, pos + k * vs)[0]
                k += 1
        assert k == nnz
        pos = pad8(pos + nnz * vs)
    else:
        slots = rows * cols // m * n
        bits = (m - 1).bit_length()
        assert ib == bits
        vals = pos
        pos = pad8(pos + slots * vs)
        stream = int.from_bytes(b[pos : pos + (slots * bits + 7) // 8], "little")
        for s in range(slots):
            j = (stream >> (s * bits)) & ((1 << bits) - 1)
            group = s // n  # groups run row by row
            dense[group * m + j] = struct.unpack_from(vfmt, b, vals + s * vs)[0]
        pos = pad8(pos + (slots * bits + 7) // 8)
    assert pos == len(b), (pos, len(b))
    return dense, vd


def main():
    tool = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([tool, tmp], check=True)
        d = Path(tmp)
        masks = [d.joinpath(f"mask{i}.bin").read_bytes() for i in (0, 1)]
        check_checkpoint(d.joinpath("checkpoint.bin").read_bytes(), masks)
        weights = [struct.unpack(f"<{280}d", d.joinpath("w0.bin").read_bytes()),
                   struct.unpack(f"<{96}d", d.joinpath("w1.bin").read_bytes())]
        for name in ("t0_csr", "t0_bitmap", "t1_csr", "t1_bitmap", "t1_nm", "t1_nm32"):
            t = int(name[1])
            ours, vd = decode_export(d.joinpath(name + ".bin").read_bytes())
            lib = d.joinpath(name + ".dense").read_bytes()
            lib = list(struct.unpack(f"<{len(lib) // 8}d", lib))
            assert ours == lib, name
            for i, w in enumerate(weights[t]):
                want = w if masks[t][i] else 0.0
                if vd == 1:
                    want = struct.unpack("<f", struct.pack("<f", want))[0]
                assert ours[i] == want, (name, i)
            print(f"{name}: {len(d.joinpath(name + '.bin').read_bytes())} bytes, decoded alike")
    print("checkpoint and exports match docs/formats.md")


if __name__ == "__main__":
    main()
