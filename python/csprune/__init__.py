"""libcsp for Python: compressed-sensing-based pruning during training.

A pure-Python ctypes binding of the C library (no compiled extension). numpy
arrays and CPU torch tensors are viewed with zero copy and pruned in place.
``Sensing`` and ``Solver`` give the sensing operators and the batched
OMP/ISTA/FISTA solvers on their own. ``Pruner.save()``/``load()`` checkpoint
a pruner; ``Pruner.export()`` and ``export_decode()`` write and read
zero-weight compressed tensors (CSR, bitmap, N:M).
The library is found through $CSP_LIBRARY, the source tree's build
directories, the prefix this package was installed with, pkg-config, or the
system loader. ``csprune.torch`` prunes an ``nn.Module`` during training.

    import numpy as np
    import csprune as csp
    w = np.random.default_rng(0).standard_normal((64, 64), dtype=np.float32)
    with csp.Context(seed=1) as ctx:
        sched = csp.Schedule.polynomial(ctx, 0.8, end_step=100, frequency=10)
        pruner = csp.Pruner(ctx, sched, granularity="row")
        i = pruner.add_tensor(w, "fc.weight")
        for step in range(101):
            ...                      # update w in place
            pruner.step(step)        # Status.PRUNED or Status.MASKED
        print(pruner.stats(i).achieved_sparsity)
"""

from ._core import (Context, Correction, CspError, DType, ExportFormat, Granularity, LogLevel,
                    RowFlag, ScheduleKind, SensingKind, SolverMethod, Status, Support, Tensor,
                    status_name, status_str, version)
from ._io import ExportInfo, ExportStats, export_decode, export_info
from ._lib import (ABI_VERSION, DEFAULT_BLOCK_SIZE, MAX_NAME, MAX_RANK, MAX_THREADS, NM_MAX_M,
                   SENSING_MAX_N)
from ._lib import path as library_path
from ._pruner import Pruner, StepStats, TensorStats
from ._schedule import Schedule
from ._sensing import Sensing
from ._solver import SolveResult, Solver, row_stats_dtype
from ._sparse import export_to_scipy, export_to_torch, from_sparse
from ._sparse_matrix import SparseFormat, SparseKernel, SparseMatrix

from ._lib import VERSION as _VERSION

__version__ = "%d.%d.%d" % _VERSION

__all__ = ["Context", "Correction", "CspError", "DType", "ExportFormat", "ExportInfo",
           "ExportStats", "Granularity", "LogLevel", "Pruner", "RowFlag", "Schedule",
           "ScheduleKind", "Sensing", "SensingKind", "SolveResult", "Solver", "SolverMethod",
           "SparseFormat", "SparseKernel", "SparseMatrix",
           "Status", "StepStats", "Support", "Tensor", "TensorStats", "export_decode", "export_info",
           "export_to_scipy", "export_to_torch", "from_sparse",
           "row_stats_dtype", "status_name", "status_str", "version", "ABI_VERSION",
           "DEFAULT_BLOCK_SIZE", "MAX_NAME", "MAX_RANK", "MAX_THREADS", "NM_MAX_M",
           "SENSING_MAX_N", "library_path"]
