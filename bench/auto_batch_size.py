"""What train.auto_find_batch_size costs: the search before training, and the slower steps of
a smaller micro-batch with more accumulation (the same effective batch).

On lm_tiny: the measured step memory (runner.batch_size.step_memory_mb) at each size; the
search's wall time with a CPU budget between the configured size's memory and half of it
(one halving: an injected out-of-memory); then --steps optimizer steps of the configured
size x accumulation against the chosen ones, alternating (A B A B ...) so load from other
processes falls on both; the ratio is the median of per-step ratios.

    PYTHONPATH=. .venv/bin/python bench/auto_batch_size.py      # ~1 min on 2 idle cores
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from runner.batch_size import find_batch_size, step_memory_mb
from runner.config import load_config
from runner.data import prepare_data
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
    t, cpu = config.train, torch.device("cpu")

    def fresh_model():
        torch.manual_seed(config.seed)
        return build_model(config, data.tokenizer.vocab_size, data.tokenizer.pad_id).train()

    model = fresh_model()

    def forward_at(size: int) -> torch.Tensor:
        return forward_loss(model, data.train_batch(0, size), "lm")[0]

    size = t.per_device_train_batch_size
    memory = {s: step_memory_mb(model, lambda s=s: forward_at(s)) for s in (size, size // 2)}
    model.zero_grad(set_to_none=True)
    budget = (memory[size] + memory[size // 2]) / 2
    start = time.perf_counter()
    choice = find_batch_size(model, cpu, size, t.gradient_accumulation_steps, budget, forward_at)
    search = time.perf_counter() - start
    print(
        f"{args.experiment}: step memory "
        + ", ".join(f"{s}: {m:.1f} MB" for s, m in memory.items())
    )
    print(f"  search with budget {budget:.1f} MB: {search:.2f} s, tried {choice.tried}")

    plans = {
        "configured": (size, t.gradient_accumulation_steps),
        "chosen": (choice.per_device_train_batch_size, choice.gradient_accumulation_steps),
    }
    runs = {}
    for name in plans:
        m = fresh_model()
        runs[name] = (m, build_optimizer(m, t, cpu), [])
    for step in range(args.steps):
        for name, (micro, accumulation) in plans.items():
            m, optimizer, times = runs[name]
            started = time.perf_counter()
            for k in range(accumulation):
                batch = data.train_batch(step * accumulation + k, micro)
                (forward_loss(m, batch, "lm")[0] / accumulation).backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), t.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - started)
    ratio = statistics.median(
        c / p for c, p in zip(runs["chosen"][2], runs["configured"][2], strict=True)
    )
    for name, (micro, accumulation) in plans.items():
        median = statistics.median(runs[name][2][args.warmup :])
        print(f"  {name:10s} {micro} x {accumulation}: median step {median * 1e3:.1f} ms")
    print(f"  chosen / configured step time (median of per-step ratios): {ratio:.3f}")


if __name__ == "__main__":
    main()
