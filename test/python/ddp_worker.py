"""One rank of test_distributed.py's runs, started by torchrun: a converted
MLP trained 3 steps under DistributedDataParallel with dqt.optim.AdamW, each
rank on its half of a global batch. Writes rank<r>.pt to OUT with what the
test checks."""
import argparse
import datetime
import io
import os
import sys
import time

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
    ap.add_argument("--mode", choices=["sync", "nosync", "badseed", "zero", "kill"],
                    required=True)
    args = ap.parse_args()
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
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
    zero = args.mode == "zero"

    def make_opt(params):
        if zero:
            return dqt.distributed.ZeroRedundancyOptimizer(params, dqt.optim.AdamW,
                                                           lr=0.05, seed=7)
        return dqt.optim.AdamW(params, lr=0.05, seed=7)

    opt = make_opt(ddp.parameters())
    if not zero:
        try:
            opt.step_in_backward()
        except RuntimeError as e:
            result["in_backward_error"] = str(e)
    per = GLOBAL_BATCH // world

    def train_step(ddp, opt, step):
        x, y = batch(step)
        opt.zero_grad()
        loss_of(ddp, x[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per]).backward()
        grads = [p.grad.clone() for p in ddp.module.parameters()]
        opt.step()
        return grads

    if args.mode == "kill":
        # Rank 1 dies after one step; rank 0's next collective must fail
        # with an error, not hang.
        train_step(ddp, opt, 0)
        if rank == 1:
            os._exit(3)
        start = time.monotonic()
        try:
            train_step(ddp, opt, 1)
            dqt.distributed.verify_replicas(model, opt)
        except Exception as e:  # noqa: BLE001  (what gloo raises is its business)
            result.update(error=f"{type(e).__name__}: {e}",
                          seconds=time.monotonic() - start)
        torch.save(result, os.path.join(args.out, f"rank{rank}.pt"))
        os._exit(1 if "error" in result else 0)

    hashes, grads = [], []
    for step in range(STEPS):
        if zero and step == STEPS - 1:  # a per-rank checkpoint before the last step
            saved_model = io.BytesIO()
            torch.save(model.state_dict(), saved_model)
            saved_opt = io.BytesIO()
            torch.save(opt.state_dict(), saved_opt)
        grads.append(train_step(ddp, opt, step))
        # The hash covers the weights and, unsharded, the optimizer states.
        hashes.append(dqt.distributed.verify_replicas(model, None if zero else opt))
    params = lambda m: {n: (p.q.clone() if isinstance(p, dqt.QuantizedTensor)
                            else p.detach().clone()) for n, p in m.named_parameters()}
    result.update(hashes=hashes, grads=grads, params=params(model))
    if zero:
        result["state_bytes"] = opt.local_state_bytes()
        # Resume from the shard: other initial weights, the checkpoint, the
        # last step again.
        model2 = model_for(5)
        saved_model.seek(0)
        model2.load_state_dict(torch.load(saved_model))
        ddp2 = torch.nn.parallel.DistributedDataParallel(model2, init_sync=False)
        opt2 = make_opt(ddp2.parameters())
        saved_opt.seek(0)
        shard = torch.load(saved_opt, weights_only=False)
        opt2.load_state_dict(shard)
        train_step(ddp2, opt2, STEPS - 1)
        result["resumed"] = params(model2)
        try:
            opt2.load_state_dict({**shard, "rank": 1 - rank})
        except ValueError as e:
            result["other_rank_error"] = str(e)
    torch.save(result, os.path.join(args.out, f"rank{rank}.pt"))
    dist.destroy_process_group()
    # Now and then (about one launch in 30 here) a worker aborted after this
    # point, during interpreter exit: "terminate called without an active
    # exception" with no Python frame, torch's c10d teardown destroying a
    # joinable thread. The results are written and the group destroyed, so
    # the worker leaves without running the exit-time destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
