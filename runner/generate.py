"""Text samples from an lm at each evaluation: greedy, and top-k/top-p with temperature.

transformers' `model.generate` (GenerationMixin, with a KV cache) does the work when the whole
sample fits in the model's positions; it gives the same tokens as the sliding-window loop
below for the same seed (tests/runner/test_generate.py), which remains for samples longer
than the context, where each step must drop the oldest token (generate cannot).
"""

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
    try:
        if len(prompt) + max_new_tokens <= context and hasattr(model, "generate"):
            return _with_generate(
                model, prompt, max_new_tokens, temperature, top_k, top_p, generator, greedy
            )
        return _sliding_window(
            model, prompt, max_new_tokens, context, temperature, top_k, top_p, generator, greedy
        )
    finally:
        model.train(was_training)


def _with_generate(model, prompt, max_new_tokens, temperature, top_k, top_p, generator, greedy):
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=not greedy,
        temperature=temperature if not greedy else None,
        top_k=top_k if not greedy and top_k > 0 else None,
        top_p=top_p if not greedy else None,
        eos_token_id=None,  # samples run their full length, as the loop does
        pad_token_id=model.config.pad_token_id if model.config.pad_token_id is not None else 0,
        use_cache=True,
    )
    # generate draws from the global RNG: fork it so training's stream is left as it was
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if generator is not None:  # the seed of the private generator, as the loop uses
            torch.manual_seed(generator.initial_seed())
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)
    return out[0, len(prompt) :].tolist()


def _sliding_window(
    model, prompt, max_new_tokens, context, temperature, top_k, top_p, generator, greedy
) -> list[int]:
    device = next(model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    for _ in range(max_new_tokens):
        logits = model(input_ids=ids[:, -context:]).logits[0, -1].float()
        if greedy:
            next_id = logits.argmax()
        else:
            next_id = _sample(logits / temperature, top_k, top_p, generator)
        ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
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
