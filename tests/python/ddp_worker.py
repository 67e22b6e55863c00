"""One rank of tests/python/test_torch_ddp.py: data-parallel training on the
CPU (gloo) under csprune.torch.ModulePruner.

    python3 ddp_worker.py RANK WORLD INIT_FILE OUT_FILE SEED

Every rank starts from the same weights and sees its own batches; results
(masks, weights, digests, errors) go to OUT_FILE (torch.save)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "python"))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

import csprune.torch  # noqa: E402

torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 24)
        self.lstm = nn.LSTM(24, 8, batch_first=True)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.lstm(torch.relu(self.fc1(x)))[0][:, -1])


def run(rank, seed, steps=16, pruner_seed=0, **kw):
    torch.manual_seed(seed)  # the same initial weights on every rank
    model = DDP(Net())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.75, begin_step=2,
                                        end_step=12, frequency=5, granularity="row",
                                        seed=pruner_seed, **kw)
    g = torch.Generator().manual_seed(seed * 100 + rank + 1)  # each rank its own data
    for _ in range(steps):
        x = torch.randn(6, 4, 10, generator=g) * (1 + rank)
        y = (x[:, -1, :3].sum(1) > 0).long()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        pruner.step()
    return {"digest": pruner.digest(), "masks": pruner.masks(),
            "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "rows": dict(pruner.observed_rows), "grouped": pruner._group is not None}


def main():
    rank, world, init, out, seed = sys.argv[1:6]
    rank, world, seed = int(rank), int(world), int(seed)
    dist.init_process_group("gloo", init_method="file://" + init, rank=rank, world_size=world)
    res = {"gmp": run(rank, seed),
           "act": run(rank, seed, sensing="activations", observe_window=3,
                      correction="blend", alpha=0.5),
           "act_alone": run(rank, seed, sensing="activations", observe_window=3,
                            correction="blend", alpha=0.5, process_group=False)}
    try:  # pruners of different seeds draw different Gaussian sensing: caught
        run(rank, seed, pruner_seed=rank, sensing="gaussian")
        res["mismatch"] = None
    except RuntimeError as e:
        res["mismatch"] = str(e)
    torch.save(res, out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
