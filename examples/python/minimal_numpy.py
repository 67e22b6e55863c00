#!/usr/bin/python3
"""Minimal libcsp from Python: gradual magnitude pruning (GMP) of one numpy
weight matrix and its momentum buffer with a cubic schedule, stepped after
every (here simulated) optimizer update. The arrays are pruned in place.

    /usr/bin/python3 examples/python/minimal_numpy.py

From the source tree the library is found in build*/ (or set CSP_LIBRARY);
an installed package finds the library installed with it.
"""
import os
import sys

import numpy as np

try:
    import csprune as csp
except ImportError:  # run from the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
    import csprune as csp

rng = np.random.default_rng(0)
weights = rng.standard_normal((4, 8)).astype(np.float32)  # the host owns its buffers
momentum = np.full_like(weights, 0.1)

with csp.Context(seed=42) as ctx:
    # Zhu & Gupta's cubic ramp from 0 to 75% over steps 0..100, an event
    # every 10 steps (TF-MOT PolynomialDecay(0, 0.75, 0, 100, 3, 10)).
    schedule = csp.Schedule.polynomial(ctx, 0.75, begin_step=0, end_step=100, frequency=10)
    pruner = csp.Pruner(ctx, schedule, granularity="tensor")
    index = pruner.add_tensor(weights, "fc.weight")   # viewed, never copied
    pruner.add_companion(index, momentum)             # zeroed where weights are pruned

    for step in range(121):
        # ... forward, backward, optimizer update (simulated) ...
        weights += 0.001 * ((np.arange(weights.size).reshape(weights.shape) + step) % 3 - 1)
        momentum += 0.01
        if pruner.step(step) == csp.Status.PRUNED:
            s = pruner.stats(index)
            print("step %3d: pruned to %2d of %d weights kept (target %.3f)"
                  % (step, s.nnz, s.numel, s.target_sparsity))

    mask = pruner.mask(index)                         # numpy bool, True = kept
    assert (weights[~mask] == 0).all() and (momentum[~mask] == 0).all()
    print("mask:\n%s" % mask.astype(int))
    print("digest %016x, %d weights kept" % (pruner.digest(), pruner.nnz()))
