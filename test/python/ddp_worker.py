"""One rank of test_distributed.py's runs, started by torchrun: a converted
MLP trained 3 steps under DistributedDataParallel with dqt.optim.AdamW, each
rank on its half of a global batch. Writes rank<r>.pt to OUT with what the
test checks."""
import argparse
import os

import torch
import torch.distributed as dist

import dqt

GLOBAL_BATCH = 8
STEPS = 3


def model_for(seed):
    torch.manual_seed(seed)
    return dqt.convert(torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                           torch.nn.Linear(32, 8)), bits=4, skip=())


def batch(step):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(GLOBAL_BATCH, 16, generator=g), torch.randn(GLOBAL_BATCH, 8, generator=g)


def loss_of(model, x, y):
    return torch.nn.functional.mse_loss(model(x), y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=["sync", "nosync", "badseed"], required=True)
    args = ap.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    result = {}
    model = model_for(0 if args.mode != "badseed" else rank)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(model,
                                                        init_sync=args.mode != "nosync")
    except RuntimeError as e:
        result["ctor_error"] = str(e)
    if args.mode == "badseed":  # the ranks disagree: nothing to train
        torch.save(result, os.path.join(args.out, f"rank{rank}.pt"))
        return
    opt = dqt.optim.AdamW(ddp.parameters(), lr=0.05, seed=7)
    try:
        opt.step_in_backward()
    except RuntimeError as e:
        result["in_backward_error"] = str(e)
    hashes, grads = [], []
    per = GLOBAL_BATCH // world
    for step in range(STEPS):
        x, y = batch(step)
        opt.zero_grad()
        loss_of(ddp, x[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per]).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        opt.step()
        hashes.append(dqt.distributed.verify_replicas(model, opt))
    result.update(hashes=hashes, grads=grads,
                  params={n: (p.q.clone() if isinstance(p, dqt.QuantizedTensor)
                              else p.detach().clone()) for n, p in model.named_parameters()})
    torch.save(result, os.path.join(args.out, f"rank{rank}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
