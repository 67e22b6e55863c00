"""The accuracy csp_sensing_observe() promises (include/csp/sensing.h): the
accumulator gains X^T X summed in float32 over chunks of at most 128 rows,
the chunks added in float64, so each element is within
128 * 2^-24 * sum_r |x_ri x_rj| of the exact sum."""
import numpy as np

OBS_ROWS = 128


def assert_xtx(S, X, times=1):
    """S (n x n) holds `times` observations of the rows X (within the bound)."""
    X = np.asarray(X, dtype=np.float64)
    ref = times * (X.T @ X)
    tol = times * OBS_ROWS * 2.0 ** -24 * (np.abs(X).T @ np.abs(X)) + 1e-12 * np.abs(ref)
    err = np.abs(np.asarray(S, dtype=np.float64) - ref)
    assert np.all(err <= tol), f"X^T X off by {np.max(err / tol):.3g} times the bound"
