"""Generation samples written to samples.jsonl at each evaluation of an lm trial.

The file follows runner.jsonl's rules: one whole record per append (fsync'd), and a resumed
run first cuts it back to its checkpoint's step (restart_samples), like metrics.jsonl.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from runner.config import EvalConfig, TrialConfig
from runner.generate import generate
from runner.jsonl import append_record, restart


def write_samples(
    path: Path, step: int, model: nn.Module, tokenizer, ev: EvalConfig, config: TrialConfig
) -> None:
    """Append one greedy and one top-k/top-p sample, both starting where a document starts: at
    the begin-of-document token with data.add_bos_token, else after an end-of-document token."""
    prompt = [tokenizer.cls_id if config.data.add_bos_token else tokenizer.eos_id]
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
    append_record(path, record)


def restart_samples(path: Path, resume_step: int | None) -> None:
    """Empty samples.jsonl for a fresh run, or keep its samples up to `resume_step` (atomically)."""
    restart(path, resume_step)
