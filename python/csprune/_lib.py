"""Finding and loading libcsp, the options structs and the C prototypes (ctypes).

Nothing here is public API: ``csp`` re-exports what users need.
"""

import ctypes
import ctypes.util
import os
import pathlib
import subprocess

#: The C ABI (soname major) and version this package was written against.
ABI_VERSION = 0
VERSION = (0, 1, 0)
VERSION_NUMBER = VERSION[0] * 10000 + VERSION[1] * 100 + VERSION[2]

_SONAME = "libcsp.so.%d" % ABI_VERSION

try:  # written by `meson install` next to this file: the prefix's libdir
    from ._config import LIBDIR as _INSTALLED_LIBDIR
except ImportError:  # the source tree
    _INSTALLED_LIBDIR = None


def _candidates():
    """Where to look, in order: $CSP_LIBRARY, a copy bundled into the package
    (a wheel built with CSP_BUNDLE_LIBRARY), the source tree's build
    directories, the libdir this package was installed with, then the
    installed prefix (pkg-config, then the loader)."""
    env = os.environ.get("CSP_LIBRARY")
    if env:
        yield env, "CSP_LIBRARY"
        return
    bundled = pathlib.Path(__file__).resolve().parent / _SONAME
    if bundled.is_file():
        yield str(bundled), "bundled copy"
    root = pathlib.Path(__file__).resolve().parents[2]
    if (root / "meson.build").is_file() and (root / "include" / "csp").is_dir():
        for build in sorted(root.glob("build*")):
            lib = build / "lib" / _SONAME
            if lib.is_file():
                yield str(lib), "build tree"
    if _INSTALLED_LIBDIR:
        lib = os.path.join(_INSTALLED_LIBDIR, _SONAME)
        if os.path.isfile(lib):
            yield lib, "install prefix"
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "csp"], check=True,
                                capture_output=True, text=True).stdout.strip()
        if libdir and os.path.isfile(os.path.join(libdir, _SONAME)):
            yield os.path.join(libdir, _SONAME), "pkg-config"
    except (OSError, subprocess.CalledProcessError):
        pass
    found = ctypes.util.find_library("csp")
    if found:
        yield found, "system loader"


def load():
    """Load libcsp. Raises OSError naming every place that was tried."""
    tried = []
    for where, how in _candidates():
        try:
            return ctypes.CDLL(where), where
        except OSError as e:
            tried.append("%s (%s): %s" % (where, how, e))
    raise OSError(
        "libcsp (%s) not found. Set CSP_LIBRARY to the library's path, build it in the "
        "source tree (meson setup build && ninja -C build), or install it "
        "(meson install). Tried: %s" % (_SONAME, "; ".join(tried) or "nothing found"))


lib, path = load()

P = ctypes.POINTER
i32, i64, u32, u64 = ctypes.c_int32, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint64
c_status = ctypes.c_int32
c_ptr = ctypes.c_void_p
c_size = ctypes.c_size_t
c_double = ctypes.c_double

ALLOC_FN = ctypes.CFUNCTYPE(c_ptr, c_ptr, c_size)
FREE_FN = ctypes.CFUNCTYPE(None, c_ptr, c_ptr)
LOG_FN = ctypes.CFUNCTYPE(None, c_ptr, i32, ctypes.c_char_p)
SCHEDULE_FN = ctypes.CFUNCTYPE(c_status, c_ptr, i64, P(c_double))
STEP_FN = ctypes.CFUNCTYPE(c_status, c_ptr, c_ptr, i64, c_status, i32)

# Constants of the headers (no function exposes them; the layout test compares
# them with a C program compiled against the headers).
MAX_THREADS = 256
MAX_RANK = 4
MAX_NAME = 255
NM_MAX_M = 32
DEFAULT_BLOCK_SIZE = 128
SENSING_MAX_N = 65536
STRUCT_MAX_SIZE = 4096


# --- options structs: field for field the C layout ---------------------------
# Every struct starts with size_t struct_size and only grows at the end. The
# sizes are checked against the loaded library at import (check_struct_sizes).

class ContextOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("alloc", ALLOC_FN),
        ("free", FREE_FN),
        ("alloc_user", c_ptr),
        ("log", LOG_FN),
        ("log_user", c_ptr),
        ("log_level", i32),
        ("num_threads", i32),
        ("seed", u64),
    ]


class ScheduleOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("kind", i32),
        ("initial_sparsity", c_double),
        ("final_sparsity", c_double),
        ("exponent", c_double),
        ("begin_step", i64),
        ("end_step", i64),
        ("frequency", i64),
        ("callback", SCHEDULE_FN),
        ("callback_user", c_ptr),
    ]


# csp_pruner_options and csp_pruner_tensor_options have no mirror: they are
# written option by option from the library's table (_options.py), in a
# buffer of STRUCT_MAX_SIZE bytes.

class OptionInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("name", ctypes.c_char_p),
        ("description", ctypes.c_char_p),
        ("enum_name", ctypes.c_char_p),
        ("type", i32),
        ("flags", i32),
        ("pruner_offset", i64),
        ("tensor_offset", i64),
        ("param", i32),
        ("reserved0", i32),
        ("min", c_double),
        ("max", c_double),
        ("default_value", c_double),
        ("member_offset", i64),
    ]


class TensorStats(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("numel", i64),
        ("nnz", i64),
        ("target_sparsity", c_double),
        ("achieved_sparsity", c_double),
        ("granularity", i32),
        ("excluded", i32),
        ("last_event", i64),
        ("sensing", i32),
        ("solver", i32),
        ("correction", i32),
        ("converged", i32),
        ("weight_error", c_double),
        ("sensing_error", c_double),
        ("solver_iterations", i64),
        ("solver_iterations_max", i64),
        ("rows_not_converged", i64),
        ("rows_damped", i64),
        ("events", i64),
        ("event_seconds", c_double),
        ("total_seconds", c_double),
        ("observed_rows", i64),
        ("observe_seconds", c_double),
    ]


class StepStats(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("steps", i64),
        ("events", i64),
        ("last_event", i64),
        ("numel", i64),
        ("nnz", i64),
        ("last_event_seconds", c_double),
        ("event_seconds", c_double),
        ("total_seconds", c_double),
        ("observe_seconds", c_double),
    ]


class SensingOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("n", i64),
        ("m", i64),
        ("rho", c_double),
        ("damping", c_double),
        ("tensor_id", u64),
        ("kind", i32),
        ("reserved0", i32),
        ("reserved", u64 * 6),
    ]


# csp_solver_options has no mirror either: csprune.Solver writes it option by
# option from the library's table (the "solver." rows, _solver.py).


class RowStats(ctypes.Structure):
    """Written by the library at a stride of SolverBatch.stats_size: no
    _init; its layout is compared with the header by the tests, and the
    numpy structured dtype of Solver results is derived from it."""
    _fields_ = [
        ("residual", c_double),
        ("energy", c_double),
        ("lambda_", c_double),   # C: lambda
        ("damping", c_double),
        ("iterations", i32),
        ("nnz", i32),
        ("converged", i32),
        ("flags", i32),
    ]


class SolverBatch(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("rows", i64),
        ("n", i64),
        ("w", c_ptr),
        ("w_stride", i64),
        ("x", c_ptr),
        ("x_stride", i64),
        ("k", c_ptr),
        ("lambda_", c_ptr),      # C: lambda
        ("allowed", c_ptr),
        ("allowed_row_bits", i64),
        ("support", c_ptr),
        ("support_row_bits", i64),
        ("stats", c_ptr),
        ("stats_size", c_size),
        ("k_all", i32),
        ("warm_start", i32),
    ]


class ExportOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("format", i32),
        ("value_dtype", i32),
        ("nm_n", i32),
        ("nm_m", i32),
    ]


class ExportStats(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("numel", i64),
        ("nnz", i64),
        ("bytes", i64),
        ("dense_bytes", i64),
        ("header_bytes", i64),
        ("index_bytes", i64),
        ("value_bytes", i64),
        ("ratio", c_double),
    ]


class ExportInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("format", i32),
        ("value_dtype", i32),
        ("rank", i32),
        ("nm_n", i32),
        ("nm_m", i32),
        ("index_bytes", i32),
        ("pointer_bytes", i32),
        ("version", i32),
        ("shape", i64 * 4),
        ("rows", i64),
        ("cols", i64),
        ("nnz", i64),
        ("bytes", i64),
    ]


class SparseOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("format", i32),
        ("kernel", i32),
        ("nm_n", i32),
        ("nm_m", i32),
    ]


class SparseInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("rows", i64),
        ("cols", i64),
        ("nnz", i64),
        ("bytes", i64),
        ("dense_bytes", i64),
        ("format", i32),
        ("kernel", i32),
        ("index_bytes", i32),
        ("nm_n", i32),
        ("nm_m", i32),
        ("nm_bits", i32),
    ]


#: Every exported function this package binds (the tests compare this with
#: lib/csp.map, so a function added to the library is noticed).
DECLARED = set()


def declare(name, restype, *argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    DECLARED.add(name)
    return fn


# core.h
declare("csp_version_number", u32)
declare("csp_version_string", ctypes.c_char_p)
declare("csp_abi_version", u32)
declare("csp_check_version", i32, u32, u32)
declare("csp_status_str", ctypes.c_char_p, c_status)
declare("csp_status_name", ctypes.c_char_p, c_status)
declare("csp_context_options_init", c_status, P(ContextOptions), c_size)
declare("csp_context_create", c_status, P(c_ptr), P(ContextOptions))
declare("csp_context_free", None, c_ptr)
declare("csp_context_last_error", ctypes.c_char_p, c_ptr)
declare("csp_context_last_status", c_status, c_ptr)
declare("csp_context_clear_error", None, c_ptr)
declare("csp_context_num_threads", i32, c_ptr)
declare("csp_context_set_num_threads", c_status, c_ptr, i32)
declare("csp_context_seed", u64, c_ptr)
declare("csp_context_set_log", c_status, c_ptr, LOG_FN, c_ptr, i32)
declare("csp_tensor_create", c_status, P(c_ptr), c_ptr, c_ptr, i32, i32, P(i64), i64,
        ctypes.c_char_p)
declare("csp_tensor_free", None, c_ptr)
declare("csp_tensor_set_data", c_status, c_ptr, c_ptr)
declare("csp_tensor_data", c_ptr, c_ptr)
declare("csp_tensor_dtype", i32, c_ptr)
declare("csp_tensor_rank", i32, c_ptr)
declare("csp_tensor_dim", i64, c_ptr, i32)
declare("csp_tensor_numel", i64, c_ptr)
declare("csp_tensor_rows", i64, c_ptr)
declare("csp_tensor_cols", i64, c_ptr)
declare("csp_tensor_row_stride", i64, c_ptr)
declare("csp_tensor_name", ctypes.c_char_p, c_ptr)

# schedule.h
declare("csp_schedule_options_init", c_status, P(ScheduleOptions), c_size)
declare("csp_schedule_create", c_status, P(c_ptr), c_ptr, P(ScheduleOptions))
declare("csp_schedule_free", None, c_ptr)
declare("csp_schedule_target", c_status, c_ptr, i64, P(c_double))
declare("csp_schedule_is_event", c_status, c_ptr, i64, P(i32))
declare("csp_schedule_next_event", c_status, c_ptr, i64, P(i64))
declare("csp_schedule_last_event", c_status, c_ptr, i64, P(i64))
declare("csp_schedule_final_sparsity", c_double, c_ptr)

# pruner.h
declare("csp_pruner_options_init", c_status, c_ptr, c_size)
declare("csp_pruner_tensor_options_init", c_status, c_ptr, c_size, c_ptr)
declare("csp_pruner_create", c_status, P(c_ptr), c_ptr, c_ptr, c_ptr)
declare("csp_option_info_init", c_status, P(OptionInfo), c_size)
declare("csp_pruner_option_count", i32)
declare("csp_pruner_option_info", c_status, i32, P(OptionInfo))
declare("csp_pruner_set_experimental", c_status, c_ptr, i32, i32, c_double)
declare("csp_pruner_get_experimental", c_status, c_ptr, i32, i32, P(c_double))
declare("csp_pruner_target", c_status, c_ptr, i32, P(c_double))
declare("csp_pruner_free", None, c_ptr)
declare("csp_pruner_add_tensor", c_status, c_ptr, c_ptr, c_ptr, P(i32))
declare("csp_pruner_add_companion", c_status, c_ptr, i32, c_ptr)
declare("csp_pruner_add_gradient", c_status, c_ptr, i32, c_ptr)
declare("csp_pruner_mask_gradients", c_status, c_ptr)
declare("csp_pruner_apply_mask", c_status, c_ptr, i32, c_ptr)
declare("csp_pruner_num_tensors", i32, c_ptr)
declare("csp_step", c_status, c_ptr, i64)
declare("csp_pruner_last_step", c_status, c_ptr, P(i64))
declare("csp_pruner_mask_words", c_status, c_ptr, i32, P(u64), i64)
declare("csp_pruner_mask_bytes", c_status, c_ptr, i32, P(ctypes.c_uint8), i64)
declare("csp_pruner_nnz", c_status, c_ptr, i32, P(i64))
declare("csp_pruner_digest", c_status, c_ptr, P(u64))
declare("csp_tensor_stats_init", c_status, P(TensorStats), c_size)
declare("csp_pruner_tensor_stats", c_status, c_ptr, i32, P(TensorStats))
declare("csp_pruner_sensing", c_status, c_ptr, i32, P(c_ptr))
declare("csp_pruner_set_sensing", c_status, c_ptr, i32, c_ptr)
declare("csp_pruner_observe", c_status, c_ptr, i32, c_ptr, i64, i64)
declare("csp_pruner_wants_observe", c_status, c_ptr, i64, P(i32))
declare("csp_step_stats_init", c_status, P(StepStats), c_size)
declare("csp_pruner_step_stats", c_status, c_ptr, P(StepStats))
declare("csp_pruner_set_callback", c_status, c_ptr, STEP_FN, c_ptr)

# sensing.h
declare("csp_sensing_options_init", c_status, P(SensingOptions), c_size)
declare("csp_sensing_create", c_status, P(c_ptr), c_ptr, P(SensingOptions))
declare("csp_sensing_free", None, c_ptr)
declare("csp_sensing_kind", i32, c_ptr)
declare("csp_sensing_n", i64, c_ptr)
declare("csp_sensing_m", i64, c_ptr)
declare("csp_sensing_gram", c_status, c_ptr, i64, i64, c_ptr, i64)
declare("csp_sensing_phi", c_status, c_ptr, i64, i64, c_ptr, i64)
declare("csp_sensing_observe", c_status, c_ptr, c_ptr, i64, i64, i64)
declare("csp_sensing_count", i64, c_ptr)
declare("csp_sensing_reset", c_status, c_ptr)
declare("csp_sensing_merge", c_status, c_ptr, c_ptr)
declare("csp_sensing_accumulator_len", i64, c_ptr)
declare("csp_sensing_read_accumulator", c_status, c_ptr, c_ptr, i64)
declare("csp_sensing_write_accumulator", c_status, c_ptr, c_ptr, i64)
declare("csp_sensing_set_gram", c_status, c_ptr, c_ptr, i64)

# solver.h
declare("csp_solver_options_init", c_status, c_ptr, c_size)
declare("csp_solver_batch_init", c_status, P(SolverBatch), c_size)
declare("csp_solver_create", c_status, P(c_ptr), c_ptr, c_ptr)
declare("csp_solver_free", None, c_ptr)
declare("csp_solver_solve", c_status, c_ptr, c_ptr, i64, i64, P(SolverBatch))

# io.h
declare("csp_pruner_save", c_status, c_ptr, c_ptr, i64, P(i64))
declare("csp_pruner_save_file", c_status, c_ptr, ctypes.c_char_p)
declare("csp_pruner_load", c_status, c_ptr, c_ptr, i64)
declare("csp_pruner_load_file", c_status, c_ptr, ctypes.c_char_p)
declare("csp_export_options_init", c_status, P(ExportOptions), c_size)
declare("csp_pruner_export", c_status, c_ptr, i32, P(ExportOptions), c_ptr, i64, P(i64))
declare("csp_export_stats_init", c_status, P(ExportStats), c_size)
declare("csp_pruner_export_stats", c_status, c_ptr, i32, P(ExportOptions), P(ExportStats))
declare("csp_export_info_init", c_status, P(ExportInfo), c_size)
declare("csp_export_inspect", c_status, c_ptr, c_ptr, i64, P(ExportInfo))
declare("csp_export_decode", c_status, c_ptr, c_ptr, i64, c_ptr, i32, i64, i64)

# sparse.h
declare("csp_sparse_options_init", c_status, P(SparseOptions), c_size)
declare("csp_sparse_info_init", c_status, P(SparseInfo), c_size)
declare("csp_sparse_from_dense", c_status, c_ptr, c_ptr, i64, i64, i64, c_ptr, P(c_ptr))
declare("csp_sparse_from_export", c_status, c_ptr, c_ptr, i64, c_ptr, P(c_ptr))
declare("csp_sparse_from_pruner", c_status, c_ptr, i32, c_ptr, P(c_ptr))
declare("csp_sparse_free", None, c_ptr)
declare("csp_sparse_inspect", c_status, c_ptr, c_ptr)
declare("csp_sparse_matvec", c_status, c_ptr, c_ptr, ctypes.c_float, c_ptr, ctypes.c_float,
        c_ptr)
declare("csp_sparse_matmul", c_status, c_ptr, c_ptr, i32, ctypes.c_float, c_ptr, i64,
        ctypes.c_float, c_ptr, i64)

#: (struct, its _init function) for every options struct.
STRUCTS = [
    (ContextOptions, lib.csp_context_options_init),
    (ScheduleOptions, lib.csp_schedule_options_init),
    (OptionInfo, lib.csp_option_info_init),
    (TensorStats, lib.csp_tensor_stats_init),
    (StepStats, lib.csp_step_stats_init),
    (SensingOptions, lib.csp_sensing_options_init),
    (SolverBatch, lib.csp_solver_batch_init),
    (ExportOptions, lib.csp_export_options_init),
    (ExportStats, lib.csp_export_stats_init),
    (ExportInfo, lib.csp_export_info_init),
    (SparseOptions, lib.csp_sparse_options_init),
    (SparseInfo, lib.csp_sparse_info_init),
]


def struct_size_accepted(struct, init, size):
    """Does the library's _init accept @p size bytes for @p struct?"""
    buf = ctypes.create_string_buffer(max(size, ctypes.sizeof(struct)) + 16)
    return init(ctypes.cast(buf, init.argtypes[0]), size) == 0


def check_struct_sizes():
    """Each ctypes mirror must have exactly a size the library knows: its _init
    accepts sizeof(mirror) and refuses one byte less (the library accepts any
    larger size, zero-filled, so a too-large mirror would pass the first test
    alone). Returns a list of problems (empty when all agree)."""
    problems = []
    for struct, init in STRUCTS:
        n = ctypes.sizeof(struct)
        if not struct_size_accepted(struct, init, n):
            problems.append("%s: the library refuses %d bytes (the binding lacks fields)"
                            % (struct.__name__, n))
        elif struct_size_accepted(struct, init, n - 1):
            problems.append("%s: the library accepts %d bytes, fewer than the binding's %d"
                            % (struct.__name__, n - 1, n))
    return problems


def init_struct(struct):
    """A struct filled with the library's defaults by its _init function."""
    for s, init in STRUCTS:
        if s is struct:
            opts = struct()
            st = init(ctypes.byref(opts), ctypes.sizeof(opts))
            if st != 0:
                raise RuntimeError("%s: %s" % (init.__name__,
                                               lib.csp_status_name(st).decode()))
            return opts
    raise KeyError(struct.__name__)
