"""The ctypes mirrors against the C headers and the loaded library."""

import ctypes
import keyword
import os
import re
import subprocess

import pytest

import csprune as csp
from csprune import _lib, _options

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")

MIRRORS = {
    "csp_context_options": _lib.ContextOptions,
    "csp_schedule_options": _lib.ScheduleOptions,
    "csp_option_info": _lib.OptionInfo,
    "csp_tensor_stats": _lib.TensorStats,
    "csp_step_stats": _lib.StepStats,
    "csp_sensing_options": _lib.SensingOptions,
    "csp_row_stats": _lib.RowStats,
    "csp_solver_batch": _lib.SolverBatch,
    "csp_export_options": _lib.ExportOptions,
    "csp_export_stats": _lib.ExportStats,
    "csp_export_info": _lib.ExportInfo,
    "csp_sparse_options": _lib.SparseOptions,
    "csp_sparse_info": _lib.SparseInfo,
}

#: Written option by option from the library's table (_options.py): their
#: offsets are compared with the table's.
OPTION_STRUCTS = {"csp_pruner_options", "csp_pruner_tensor_options"}

ENUMS = {
    "CSP_DTYPE_": csp.DType,
    "CSP_LOG_": csp.LogLevel,
    "CSP_SCHEDULE_": csp.ScheduleKind,
    "CSP_GRANULARITY_": csp.Granularity,
    "CSP_CORRECTION_": csp.Correction,
    "CSP_SUPPORT_": csp.Support,
    "CSP_SENSING_": csp.SensingKind,
    "CSP_SOLVER_": csp.SolverMethod,
    "CSP_ROW_": csp.RowFlag,
    "CSP_EXPORT_": csp.ExportFormat,
}


def mirror_field(mirror, name):
    """The ctypes field of C field @p name (a Python keyword gets a "_")."""
    return getattr(mirror, name + "_" if keyword.iskeyword(name) else name)


def test_struct_sizes_agree_with_the_library():
    assert _lib.check_struct_sizes() == []


def test_struct_size_check_catches_a_wrong_mirror():
    class TooLarge(ctypes.Structure):
        _fields_ = _lib.ScheduleOptions._fields_ + [("extra", ctypes.c_int64)]

    class TooSmall(ctypes.Structure):
        _fields_ = _lib.ScheduleOptions._fields_[:-1]

    init = _lib.lib.csp_schedule_options_init
    n = ctypes.sizeof(_lib.ScheduleOptions)
    assert _lib.struct_size_accepted(_lib.ScheduleOptions, init, n)
    assert not _lib.struct_size_accepted(_lib.ScheduleOptions, init, n - 1)
    # a mirror with a field too many is accepted at its size, and one byte less too
    assert _lib.struct_size_accepted(TooLarge, init, ctypes.sizeof(TooLarge) - 1)
    assert not _lib.struct_size_accepted(TooSmall, init, ctypes.sizeof(TooSmall))


def test_layout_matches_the_compiled_headers(helper):
    out = subprocess.run([helper, "layout"], check=True, capture_output=True,
                         text=True).stdout
    seen, seen_enums, seen_options = set(), set(), set()
    table = {o.name: o for o in _options.OPTIONS}
    for line in out.splitlines():
        kind, *rest = line.split()
        if kind == "size" and rest[0] in OPTION_STRUCTS:
            seen.add(rest[0])  # no mirror: written option by option
        elif kind == "size":
            name, size = rest
            assert ctypes.sizeof(MIRRORS[name]) == int(size), name
            seen.add(name)
        elif kind == "offset" and rest[0] in OPTION_STRUCTS:
            name, field, off = rest
            if field == "struct_size":
                continue
            if field.startswith("reserved"):
                continue
            o = table[field]
            got = o.pruner_offset if name == "csp_pruner_options" else o.tensor_offset
            assert got == int(off), (name, field)
            seen_options.add((name, field))
        elif kind == "offset":
            name, field, off = rest
            assert mirror_field(MIRRORS[name], field).offset == int(off), (name, field)
        elif kind == "enum":
            name, value = rest
            prefix = next((p for p in ENUMS if name.startswith(p)), None)
            if prefix is None:  # a status code: CSP_OK, CSP_DAMPED, ...
                assert csp.Status[name[len("CSP_"):]] == int(value), name
            else:
                assert ENUMS[prefix][name[len(prefix):]] == int(value), name
            seen_enums.add(name)
        elif kind == "const":
            name, value = rest
            assert getattr(_lib, name) == int(value), name
    assert seen == set(MIRRORS) | OPTION_STRUCTS
    # the options the helper knows (those of 0.1.0) are where the library's table
    # says; the table's offsets are offsetof() themselves, so an option added later
    # needs no line in the helper
    want = {("csp_pruner_options", o.name) for o in _options.OPTIONS if o.pruner_offset >= 0}
    want |= {("csp_pruner_tensor_options", o.name) for o in _options.OPTIONS
             if o.tensor_offset >= 0}
    assert seen_options <= want and len(seen_options) >= 40
    # every member of every enum was compared, and the non-error status codes
    assert seen_enums >= {p + m.name for p, e in ENUMS.items() for m in e}
    assert seen_enums >= {"CSP_" + s.name for s in csp.Status if s >= 0}
    # every field of every mirror was compared
    n_offsets = sum(1 for line in out.splitlines() if line.startswith("offset ")
                    and line.split()[1] not in OPTION_STRUCTS)
    assert n_offsets == sum(len(m._fields_) for m in MIRRORS.values())


def test_every_exported_function_is_bound():
    with open(os.path.join(ROOT, "lib", "csp.map")) as f:
        exported = set(re.findall(r"^\s*(csp_\w+);", f.read(), re.M))
    assert exported, "no symbols parsed from lib/csp.map"
    assert _lib.DECLARED - exported == set(), "bound but not exported"
    assert exported - _lib.DECLARED == set(), \
        "exported by libcsp but not bound in python/csprune/_lib.py"


def test_enum_members_are_complete():
    # the header's names, parsed from the public headers
    names = set()
    for hdr in ("core.h", "schedule.h", "pruner.h", "sensing.h", "solver.h", "io.h",
                "experimental.h"):
        with open(os.path.join(ROOT, "include", "csp", hdr)) as f:
            text = f.read()
        names |= set(re.findall(r"^\s*(CSP_[A-Z0-9_]+)\s*=\s*-?\d+", text, re.M))
        names |= set(re.findall(r"^#define (CSP_(?:CORRECTION|SOLVER)_[A-Z0-9_]+) \d+", text,
                                re.M))
    for prefix, enum in ENUMS.items():
        want = {n[len(prefix):] for n in names if n.startswith(prefix)}
        assert want == {m.name for m in enum}, prefix
    with open(os.path.join(ROOT, "include", "csp", "core.h")) as f:
        body = re.search(r"enum csp_status_code \{(.*?)\};", f.read(), re.S).group(1)
    status = set(re.findall(r"^\s*CSP_([A-Z0-9_]+)\s*=", body, re.M))
    assert status == {m.name for m in csp.Status}


def test_every_struct_with_an_init_is_checked():
    # RowStats alone has no _init (the library writes it at stats_size)
    assert {s for s, _ in _lib.STRUCTS} == set(MIRRORS.values()) - {_lib.RowStats}


@pytest.mark.parametrize("struct", [s for s, _ in _lib.STRUCTS])
def test_init_fills_struct_size(struct):
    opts = _lib.init_struct(struct)
    assert opts.struct_size == ctypes.sizeof(struct)


def test_options_doc_is_current():
    """docs/options.md is generated from the library's options table
    (tools/options-doc.py): an option added or changed without
    regenerating it fails here."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "options_doc", os.path.join(ROOT, "tools", "options-doc.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(os.path.join(ROOT, "docs", "options.md")) as f:
        assert f.read() == mod.render(), \
            "docs/options.md is stale: run tools/options-doc.py"


def test_option_table_is_consistent():
    """Every row of the library's table names a distinct option, has its
    default inside its range, and its offsets fit the structs."""
    names = [o.name for o in _options.OPTIONS]
    assert len(names) == len(set(names)) and len(names) >= 25
    for o in _options.OPTIONS:
        assert o.pruner_offset >= 0 or o.tensor_offset >= 0 or o.experimental, o.name
        assert not (o.experimental and (o.pruner_offset >= 0 or o.tensor_offset >= 0)), o.name
        if o.experimental:
            assert o.param > 0, o.name
        if o.name != "final_sparsity":  # its default is the schedule's
            lo_ok = o.default > o.min if o.flags & _options.MIN_OPEN else o.default >= o.min
            hi_ok = o.default < o.max if o.flags & _options.MAX_OPEN else o.default <= o.max
            assert (lo_ok and hi_ok) or o.flags & _options.FIXED, o.name
        if o.type == _options.ENUM:
            assert o.enum is not None, o.name
            assert {m.value for m in o.enum} >= set(range(int(o.min), int(o.max) + 1)), o.name
