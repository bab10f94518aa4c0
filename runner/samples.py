"""Generation samples written to samples.jsonl at each evaluation of an lm trial."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from runner.config import EvalConfig, TrialConfig
from runner.generate import generate


def write_samples(
    path: Path, step: int, model: nn.Module, tokenizer, ev: EvalConfig, config: TrialConfig
) -> None:
    """Append one greedy and one top-k/top-p sample, both starting from the end-of-document token."""
    prompt = [tokenizer.eos_id]
    # a generator seeded by the step: samples are reproducible and leave training's RNG alone
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    context = config.data.block_size
    greedy = generate(model, prompt, ev.sample_tokens, context, greedy=True)
    sampled = generate(
        model,
        prompt,
        ev.sample_tokens,
        context,
        ev.sample_temperature,
        ev.sample_top_k,
        ev.sample_top_p,
        generator,
    )
    record = {
        "step": step,
        "greedy": tokenizer.decode(greedy),
        "sampled": tokenizer.decode(sampled),
    }
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
