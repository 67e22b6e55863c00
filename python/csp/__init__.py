"""libcsp for Python: compressed-sensing-based pruning during training.

A pure-Python ctypes binding of the C library; numpy arrays are viewed with
zero copy. The library is found through $CSP_LIBRARY, the source tree's
build directory, or the installed prefix (pkg-config / the system loader).
"""

from ._core import (Context, CspError, DType, LogLevel, Status, Tensor, status_name,
                    status_str, version)
from ._lib import ABI_VERSION, path as library_path

__all__ = ["Context", "CspError", "DType", "LogLevel", "Status", "Tensor", "status_name",
           "status_str", "version", "ABI_VERSION", "library_path"]
