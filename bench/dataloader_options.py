"""Do DataLoader workers, prefetch and pinned memory help the runner on CPU?

Measures (1) what building one micro-batch costs in the trial's process (data.train_batch:
the most workers can take off a step), and (2) --steps optimizer steps of lm_tiny with the
batches drawn inline against drawn from 2 workers (prefetch 2), alternating A B A B ... so
load from other processes falls on both; ratio = median of per-step ratios.

    PYTHONPATH=. .venv/bin/python bench/dataloader_options.py
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from runner.config import load_config
from runner.data import prepare_data
from runner.data.loader import train_batches
from runner.loss import forward_loss
from runner.model import build_model
from runner.optim import build_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="experiments/lm_tiny.yaml")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    config = load_config(args.experiment)
    data = prepare_data(config)
    t = config.train
    size = t.per_device_train_batch_size
    build = []
    for i in range(200):
        started = time.perf_counter()
        data.train_batch(i, size)
        build.append(time.perf_counter() - started)
    print(
        f"{args.experiment} ({config.data.packing_strategy} packing): building one {size} x "
        f"{config.data.block_size} micro-batch inline: median {statistics.median(build) * 1e3:.3f} ms"
    )
    settings = {
        "inline": t,
        "2 workers": dataclasses.replace(t, dataloader_num_workers=2, dataloader_prefetch_factor=2),
    }
    runs = {}
    for name, train in settings.items():
        torch.manual_seed(config.seed)
        model = build_model(config, data.tokenizer.vocab_size, data.tokenizer.pad_id).train()
        runs[name] = (
            model,
            build_optimizer(model, t, torch.device("cpu")),
            train_batches(data, 0, 1, size, train),
            [],
        )
    for _ in range(args.warmup + args.steps):
        for model, optimizer, stream, times in runs.values():
            started = time.perf_counter()
            loss, _ = forward_loss(model, next(stream), "lm")
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - started)
    inline, workers = (runs[n][3][args.warmup :] for n in settings)
    for name in settings:
        print(
            f"  {name:10s} median step {statistics.median(runs[name][3][args.warmup :]) * 1e3:.1f} ms"
        )
    ratio = statistics.median(w / i for w, i in zip(workers, inline, strict=True))
    print(f"  2 workers / inline step time (median of per-step ratios): {ratio:.3f}")


if __name__ == "__main__":
    main()
