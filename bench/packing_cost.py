"""Speed cost of document-aware packing (data.packing_strategy=documents) against wrapped.

Both contenders train the same model (same build_model, same seed) on the same blocks of
one prepared dataset; only the batch differs: wrapped passes input_ids alone (sdpa's causal
fast path), documents adds position_ids (transformers builds a block-diagonal mask) and
labels with -100 at boundaries. Steps alternate A B A B ... so load from other processes
falls on both alike; the ratio is the median over steps of documents' step / wrapped's step
(forward, loss, backward, clip, AdamW step), after --warmup steps.

    .venv/bin/python bench/packing_cost.py                   # lm_tiny on CPU, ~1 min
    .venv/bin/python bench/packing_cost.py --steps 60 -o data.block_size=256
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from runner.config import load_config
from runner.data import prepare_data
from runner.loss import forward_loss
from runner.model import build_model
from runner.optim import build_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="experiments/lm_tiny.yaml")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("-o", "--override", action="append", default=[])
    args = parser.parse_args()
    config = load_config(args.experiment, ["data.packing_strategy=documents", *args.override])
    data = prepare_data(config)
    t = config.train
    contenders = {}
    for name in ("wrapped", "documents"):
        torch.manual_seed(config.seed)
        model = build_model(config, data.tokenizer.vocab_size, data.tokenizer.pad_id).train()
        contenders[name] = (model, build_optimizer(model, t, torch.device("cpu")))
    times: dict[str, list[float]] = {name: [] for name in contenders}
    losses: dict[str, float] = {}
    for step in range(args.steps):
        batch = data.train_batch(step, t.per_device_train_batch_size)
        for name, (model, optimizer) in contenders.items():
            feed = batch if name == "documents" else {"input_ids": batch["input_ids"]}
            start = time.perf_counter()
            loss, _ = forward_loss(model, feed, "lm")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses[name] = loss.item()
            times[name].append(time.perf_counter() - start)
    ratios = [d / w for d, w in zip(times["documents"], times["wrapped"], strict=True)][
        args.warmup :
    ]
    print(
        f"{args.experiment} {' '.join(args.override)}: {args.steps} steps, batch "
        f"{t.per_device_train_batch_size} x {config.data.block_size}, torch threads "
        f"{torch.get_num_threads()}"
    )
    for name, values in times.items():
        print(
            f"  {name:10s} median step {statistics.median(values[args.warmup :]) * 1e3:7.1f} ms"
            f"   last loss {losses[name]:.3f}"
        )
    print(
        f"  documents / wrapped step time (median of per-step ratios): "
        f"{statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()
