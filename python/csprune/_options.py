"""The pruner's options, from the library's own table (csp_pruner_option_info).

Every option of csp_pruner_options, csp_pruner_tensor_options and the
experimental parameters is described once, in C (lib/prune/options.c); this
module reads that table at import and builds the keyword arguments of
Pruner() and Pruner.add_tensor() from it, so an option added to the library
needs no Python code. A keyword is the option's member path with "." turned
into "_" (``sensing.damping`` -> ``sensing_damping``), and ``sensing`` /
``solver`` name ``sensing.kind`` / ``solver.method``.
"""

import ctypes
import dataclasses
import math
from typing import Optional

from . import _lib
from ._core import (Correction, Granularity, SensingKind, SolverMethod, Support, c_int,
                    to_enum)
from ._lib import lib

# csp_option_type, csp_option_flag (include/csp/pruner.h)
INT32, INT64, UINT64, DOUBLE, ENUM = 1, 2, 3, 4, 5
PRUNER, TENSOR, EXPERIMENTAL, FIXED, CSP_ONLY, MIN_OPEN, MAX_OPEN = 1, 2, 4, 8, 16, 32, 64

_ENUMS = {"csp_granularity": Granularity, "csp_correction": Correction,
          "csp_sensing_kind": SensingKind, "csp_solver_method": SolverMethod,
          "csp_support": Support}
_CTYPES = {INT32: ctypes.c_int32, ENUM: ctypes.c_int32, INT64: ctypes.c_int64,
           UINT64: ctypes.c_uint64, DOUBLE: ctypes.c_double}
_INT_NAMES = {INT32: "int32", ENUM: "int32", INT64: "int64", UINT64: "uint64"}
#: Keywords of the 0.1 pre-releases, for the error message.
_RENAMED = {"rho": "sensing_rho", "damping": "sensing_damping"}
#: Primary fields: the keyword is the struct's name alone.
_PRIMARY = {"sensing.kind": "sensing", "solver.method": "solver"}


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a pruner, as the library describes it (csp_option_info)."""
    name: str             #: member path, e.g. "sensing.damping"
    keyword: str          #: the Python keyword, e.g. "sensing_damping"
    description: str
    type: int             #: INT32, INT64, UINT64, DOUBLE or ENUM
    flags: int            #: PRUNER, TENSOR, EXPERIMENTAL, ... bits
    pruner_offset: int    #: byte offset in csp_pruner_options, or -1
    tensor_offset: int    #: byte offset in csp_pruner_tensor_options, or -1
    member_offset: int    #: "solver."/"sensing." options: offset in that struct, or -1
    param: int            #: experimental: the csp_experimental_param, else 0
    min: float
    max: float
    default: float
    enum: Optional[type]  #: the Python enum of an ENUM option

    @property
    def experimental(self):
        return bool(self.flags & EXPERIMENTAL)

    def convert(self, value, fn, name=None):
        """@p value checked against the option's C type (the library checks
        the range): an enum member, name or value for ENUM; a bool or 0/1
        for 0..1 flags. Messages call it @p name (default: the keyword)."""
        name = name or self.keyword
        if self.type == ENUM:
            return int(to_enum(self.enum, value, name))
        if self.type == DOUBLE:
            if isinstance(value, bool) or not isinstance(value, (int, float)) and \
                    not hasattr(value, "__float__"):
                raise TypeError("%s(): %s must be a number, not %s"
                                % (fn, name, type(value).__name__))
            return float(value)
        if self.min == 0 and self.max == 1 and isinstance(value, bool):
            return int(value)
        return c_int(value, _INT_NAMES[self.type], name, fn)


def _read_table():
    options = []
    for i in range(lib.csp_pruner_option_count()):
        info = _lib.OptionInfo()
        lib.csp_option_info_init(ctypes.byref(info), ctypes.sizeof(info))
        if lib.csp_pruner_option_info(i, ctypes.byref(info)) != 0:
            raise RuntimeError("csp_pruner_option_info(%d) failed" % i)
        name = info.name.decode()
        enum_name = info.enum_name.decode()
        options.append(Option(
            name=name, keyword=_PRIMARY.get(name, name.replace(".", "_")),
            description=info.description.decode(), type=info.type, flags=info.flags,
            pruner_offset=info.pruner_offset, tensor_offset=info.tensor_offset,
            member_offset=info.member_offset,
            param=info.param, min=info.min, max=info.max, default=info.default_value,
            enum=_ENUMS.get(enum_name) if info.type == ENUM else None))
    return tuple(options)


#: Every option, in the library's order.
OPTIONS = _read_table()
_BY_KEYWORD = {o.keyword: o for o in OPTIONS if not o.flags & FIXED}
#: The keywords of Pruner() and of Pruner.add_tensor().
PRUNER_KEYWORDS = tuple(k for k, o in _BY_KEYWORD.items()
                        if o.flags & PRUNER or o.experimental)
TENSOR_KEYWORDS = tuple(k for k, o in _BY_KEYWORD.items() if o.flags & TENSOR)


def options():
    """Every option of a pruner (an Option per row of the library's table)."""
    return OPTIONS


def option(keyword):
    """The Option of @p keyword (KeyError for an unknown one)."""
    return _BY_KEYWORD[keyword]


def new_buffer():
    """A zeroed buffer any options struct fits in (CSP_STRUCT_MAX_SIZE
    bytes: the library accepts it with the bytes it does not know zero)."""
    return (ctypes.c_uint8 * _lib.STRUCT_MAX_SIZE)()


def split(values, allowed, fn):
    """Check the keyword arguments @p values (None: unset) against the
    @p allowed keywords and convert them: (struct fields as (Option, value),
    experimental parameters as (Option, value))."""
    fields, experimental = [], []
    for keyword, value in values.items():
        if value is None:
            continue
        if keyword not in allowed:
            hint = ("; it is %s now" % _RENAMED[keyword]) if keyword in _RENAMED else ""
            raise TypeError("%s() got an unexpected keyword argument %r%s (options: %s)"
                            % (fn, keyword, hint, ", ".join(sorted(allowed))))
        o = _BY_KEYWORD[keyword]
        (experimental if o.experimental else fields).append((o, o.convert(value, fn)))
    return fields, experimental


def write(buf, fields, tensor):
    """Store converted @p fields in an options buffer (csp_pruner_options,
    or with @p tensor csp_pruner_tensor_options)."""
    for o, value in fields:
        off = o.tensor_offset if tensor else o.pruner_offset
        _CTYPES[o.type].from_buffer(buf, off).value = value


def read(buf, o, tensor):
    """The value of option @p o in an options buffer."""
    off = o.tensor_offset if tensor else o.pruner_offset
    return _CTYPES[o.type].from_buffer(buf, off).value


def write_member(buf, o, value):
    """Store @p value of an embedded struct's option in a buffer holding
    that struct (csp_solver_options, csp_sensing_options)."""
    _CTYPES[o.type].from_buffer(buf, o.member_offset).value = value


def read_member(buf, o):
    return _CTYPES[o.type].from_buffer(buf, o.member_offset).value


def describe():
    """The options as a markdown table (docs/options.md is this)."""
    def fmt(v, o):
        if isinstance(v, float) and math.isnan(v):
            return "(see text)"
        if o.type == ENUM and o.enum is not None:
            try:
                return o.enum(int(v)).name.lower()
            except ValueError:
                return str(int(v))
        if o.type != DOUBLE:
            return "%d" % v if abs(v) < 2 ** 53 else "%.6g" % v
        return "%g" % v

    def where(o):
        if o.experimental:
            return "experimental" + (", per tensor" if o.flags & TENSOR else ", pruner-wide")
        parts = (["pruner"] if o.flags & PRUNER else []) + (["tensor"] if o.flags & TENSOR else [])
        return " and ".join(parts) + (" (fixed by the pruner)" if o.flags & FIXED else "")

    lines = ["| option (C) | Python keyword | where | type | range | default | meaning |",
             "|---|---|---|---|---|---|---|"]
    for o in OPTIONS:
        kind = {INT32: "int32", INT64: "int64", UINT64: "uint64", DOUBLE: "double",
                ENUM: "enum"}[o.type]
        if o.type == ENUM and o.enum is not None:
            kind = "`%s`" % o.enum.__name__
            rng = ", ".join(m.name.lower() for m in o.enum if o.min <= m <= o.max)
        else:
            rng = "%s%s, %s%s" % ("(" if o.flags & MIN_OPEN else "[", fmt(o.min, o),
                                  fmt(o.max, o), ")" if o.flags & MAX_OPEN else "]")
        kw = "-" if o.flags & FIXED else "`%s`" % o.keyword
        lines.append("| `%s` | %s | %s | %s | %s | %s | %s |"
                     % (o.name, kw, where(o), kind, rng, fmt(o.default, o), o.description))
    return "\n".join(lines) + "\n"
