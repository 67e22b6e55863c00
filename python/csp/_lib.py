"""Finding and loading libcsp, and declaring the C prototypes (ctypes)."""

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


def _candidates():
    """Where to look, in order: $CSP_LIBRARY, the source tree's build
    directories, then the installed prefix (pkg-config, then the loader)."""
    env = os.environ.get("CSP_LIBRARY")
    if env:
        yield env, "CSP_LIBRARY"
        return
    root = pathlib.Path(__file__).resolve().parents[2]
    if (root / "meson.build").is_file():
        for build in sorted(root.glob("build*")):
            lib = build / "lib" / _SONAME
            if lib.is_file():
                yield str(lib), "build tree"
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
    for path, how in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s): %s" % (path, how, e))
    raise OSError(
        "libcsp (%s) not found. Set CSP_LIBRARY to the library's path, build it in the "
        "source tree (meson setup build && ninja -C build), or install it "
        "(meson install). Tried: %s" % (_SONAME, "; ".join(tried) or "nothing found"))


lib, path = load()

c_status = ctypes.c_int32
c_ptr = ctypes.c_void_p
ALLOC_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
FREE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p)


class ContextOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("alloc", ALLOC_FN),
        ("free", FREE_FN),
        ("alloc_user", ctypes.c_void_p),
        ("log", LOG_FN),
        ("log_user", ctypes.c_void_p),
        ("log_level", ctypes.c_int32),
        ("num_threads", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
    ]


def declare(name, restype, *argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


P = ctypes.POINTER
i32, i64, u32, u64 = ctypes.c_int32, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint64

# core.h
declare("csp_version_number", u32)
declare("csp_version_string", ctypes.c_char_p)
declare("csp_abi_version", u32)
declare("csp_check_version", i32, u32, u32)
declare("csp_status_str", ctypes.c_char_p, c_status)
declare("csp_status_name", ctypes.c_char_p, c_status)
declare("csp_context_options_init", c_status, P(ContextOptions), ctypes.c_size_t)
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
