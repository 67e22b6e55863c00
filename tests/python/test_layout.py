"""The ctypes mirrors against the C headers and the loaded library."""

import ctypes
import os
import re
import subprocess

import pytest

import csp
from csp import _lib

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")

MIRRORS = {
    "csp_context_options": _lib.ContextOptions,
    "csp_schedule_options": _lib.ScheduleOptions,
    "csp_pruner_options": _lib.PrunerOptions,
    "csp_pruner_tensor_options": _lib.PrunerTensorOptions,
    "csp_tensor_stats": _lib.TensorStats,
}

ENUMS = {
    "CSP_DTYPE_": csp.DType,
    "CSP_LOG_": csp.LogLevel,
    "CSP_SCHEDULE_": csp.ScheduleKind,
    "CSP_GRANULARITY_": csp.Granularity,
}


def test_struct_sizes_agree_with_the_library():
    assert _lib.check_struct_sizes() == []


def test_struct_size_check_catches_a_wrong_mirror():
    class TooLarge(ctypes.Structure):
        _fields_ = _lib.PrunerOptions._fields_ + [("extra", ctypes.c_int64)]

    class TooSmall(ctypes.Structure):
        _fields_ = _lib.PrunerOptions._fields_[:-1]

    init = _lib.lib.csp_pruner_options_init
    n = ctypes.sizeof(_lib.PrunerOptions)
    assert _lib.struct_size_accepted(_lib.PrunerOptions, init, n)
    assert not _lib.struct_size_accepted(_lib.PrunerOptions, init, n - 1)
    # a mirror with a field too many is accepted at its size, and one byte less too
    assert _lib.struct_size_accepted(TooLarge, init, ctypes.sizeof(TooLarge) - 1)
    assert not _lib.struct_size_accepted(TooSmall, init, ctypes.sizeof(TooSmall))


def test_layout_matches_the_compiled_headers(helper):
    out = subprocess.run([helper, "layout"], check=True, capture_output=True,
                         text=True).stdout
    seen = set()
    for line in out.splitlines():
        kind, *rest = line.split()
        if kind == "size":
            name, size = rest
            assert ctypes.sizeof(MIRRORS[name]) == int(size), name
            seen.add(name)
        elif kind == "offset":
            name, field, off = rest
            assert getattr(MIRRORS[name], field).offset == int(off), (name, field)
        elif kind == "enum":
            name, value = rest
            prefix = next(p for p in ENUMS if name.startswith(p))
            assert ENUMS[prefix][name[len(prefix):]] == int(value), name
        elif kind == "const":
            name, value = rest
            assert getattr(_lib, name) == int(value), name
    assert seen == set(MIRRORS)
    # every field of every mirror was compared
    n_offsets = sum(1 for line in out.splitlines() if line.startswith("offset "))
    assert n_offsets == sum(len(m._fields_) for m in MIRRORS.values())


def test_every_exported_function_is_bound():
    with open(os.path.join(ROOT, "lib", "csp.map")) as f:
        exported = set(re.findall(r"^\s*(csp_\w+);", f.read(), re.M))
    assert exported, "no symbols parsed from lib/csp.map"
    assert _lib.DECLARED - exported == set(), "bound but not exported"
    assert exported - _lib.DECLARED == set(), \
        "exported by libcsp but not bound in python/csp/_lib.py"


def test_enum_members_are_complete():
    # the header's names, parsed from the public headers
    names = set()
    for hdr in ("core.h", "schedule.h", "pruner.h"):
        with open(os.path.join(ROOT, "include", "csp", hdr)) as f:
            names |= set(re.findall(r"^\s*(CSP_[A-Z0-9_]+)\s*=\s*-?\d+", f.read(), re.M))
    for prefix, enum in ENUMS.items():
        want = {n[len(prefix):] for n in names if n.startswith(prefix)}
        assert want == {m.name for m in enum}, prefix
    status = {n[4:] for n in names if re.match(r"CSP_(OK|MASKED|PRUNED|E_)", n)}
    assert status == {m.name for m in csp.Status}


@pytest.mark.parametrize("struct", list(MIRRORS.values()))
def test_init_fills_struct_size(struct):
    opts = _lib.init_struct(struct)
    assert opts.struct_size == ctypes.sizeof(struct)
