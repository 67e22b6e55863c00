"""csprune.torch under torch.distributed: two gloo processes on the CPU
(tests/python/ddp_worker.py) prune a DistributedDataParallel model with GMP
and with activation sensing and end with identical masks and weights; a
mismatch between the ranks is an error."""

import os
import random
import subprocess
import sys

import pytest

if os.environ.get("CSP_TEST_SKIP_TORCH"):
    pytest.skip("CSP_TEST_SKIP_TORCH: " + os.environ["CSP_TEST_SKIP_TORCH"],
                allow_module_level=True)
torch = pytest.importorskip("torch", reason="PyTorch (Debian python3-torch) is not installed")
if not torch.distributed.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ddp_worker.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    seed = random.SystemRandom().randrange(1, 2**20)
    print("seed", seed)
    tmp = tmp_path_factory.mktemp("ddp")
    init = tmp / "init"
    outs = [tmp / ("rank%d.pt" % r) for r in range(2)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, WORKER, str(r), "2", str(init), str(outs[r]),
                               str(seed)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(2)]
    for r, p in enumerate(procs):
        try:
            log, _ = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("rank %d timed out" % r)
        assert p.returncode == 0, "rank %d failed:\n%s" % (r, log)
    return [torch.load(o) for o in outs]


@pytest.mark.parametrize("case", ["gmp", "act"])
def test_ranks_end_with_identical_masks_and_weights(ranks, case):
    a, b = ranks[0][case], ranks[1][case]
    assert a["grouped"] and b["grouped"]
    assert a["digest"] == b["digest"]
    for name in a["masks"]:
        assert torch.equal(a["masks"][name], b["masks"][name]), name
        assert not a["masks"][name].all()  # something was pruned
    for name in a["weights"]:
        assert torch.equal(a["weights"][name], b["weights"][name]), name


def test_activation_statistics_are_what_made_them_agree(ranks):
    """Without the all-reduce (process_group=False) the ranks' own statistics
    decide, and the masks differ: the divergence the all-reduce prevents."""
    a, b = ranks[0]["act_alone"], ranks[1]["act_alone"]
    assert not a["grouped"]
    assert a["digest"] != b["digest"]
    assert a["rows"] == b["rows"] and sum(a["rows"].values()) > 0  # same counts, other data


def test_mismatching_ranks_raise(ranks):
    for r in range(2):
        msg = ranks[r]["mismatch"]
        assert msg is not None and "masks differ" in msg and "rank 0" in msg \
            and "rank 1" in msg
