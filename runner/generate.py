"""Text samples from an lm at each evaluation: greedy, and top-k/top-p with temperature."""

from __future__ import annotations

import torch
from torch import nn


@torch.inference_mode()
def generate(
    model: nn.Module,
    prompt: list[int],
    max_new_tokens: int,
    context: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    greedy: bool = False,
) -> list[int]:
    """Token ids continuing `prompt`. A private generator keeps training's RNG untouched."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    for _ in range(max_new_tokens):
        logits = model(input_ids=ids[:, -context:]).logits[0, -1].float()
        if greedy:
            next_id = logits.argmax()
        else:
            next_id = _sample(logits / temperature, top_k, top_p, generator)
        ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    model.train(was_training)
    return ids[0, len(prompt) :].tolist()


def _sample(logits: torch.Tensor, top_k: int, top_p: float, generator) -> torch.Tensor:
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop tokens once the mass before them already exceeds top_p (the first always stays)
        drop = cumulative - sorted_logits.softmax(-1) > top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).to(logits.device)[0]
