#!/usr/bin/env python3
"""Run det_driver under OPENBLAS_NUM_THREADS=1 and =2 (and libcsp thread
counts 1 and 2), each in its own process, with a fresh seed, and require
identical mask digests after every event and identical weight bytes, for
every solver x sensing kind (issue 12, defect 3)."""
import os
import secrets
import subprocess
import sys


def run(driver, seed, blas, threads):
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(blas)
    env["OMP_NUM_THREADS"] = str(blas)
    res = subprocess.run([driver, str(seed), str(threads)], env=env, capture_output=True,
                         text=True, timeout=600)
    if res.returncode != 0:
        sys.exit("det_driver failed (blas %d, threads %d): %s" % (blas, threads, res.stderr))
    return res.stdout.splitlines()


def main():
    driver = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else secrets.randbits(32)
    print("seed", seed)
    ref = run(driver, seed, 1, 1)
    if len(ref) != 16:
        sys.exit("expected 16 runs, got %d" % len(ref))
    bad = 0
    for blas, threads in ((2, 1), (2, 2), (1, 2)):
        out = run(driver, seed, blas, threads)
        for a, b in zip(ref, out):
            if a != b:
                bad += 1
                print("DIFFER (blas %d, threads %d):\n  %s\n  %s" % (blas, threads, a, b))
    if bad:
        sys.exit("%d runs differ across thread counts (seed %d)" % (bad, seed))
    print("all %d runs identical across BLAS / libcsp thread counts" % len(ref))


if __name__ == "__main__":
    main()
