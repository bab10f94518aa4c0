"""Samples through transformers' model.generate give the tokens of the sliding-window loop
(runner.generate), greedy and sampled with temperature, top-k and top-p."""

import pytest
import torch
import transformers

from runner.generate import _sliding_window, generate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=50,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
        use_cache=False,
    )
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize(
    "options",
    [
        {"greedy": True},
        {"temperature": 0.8, "top_k": 10, "top_p": 0.9},
        {"temperature": 1.3, "top_k": 0, "top_p": 1.0},
    ],
)
def test_generate_matches_the_sliding_window_loop(model, options):
    prompt, seed = [3, 7], 1234
    mine = generate(model, prompt, 20, 32, generator=torch.Generator().manual_seed(seed), **options)
    loop = _sliding_window(
        model,
        prompt,
        20,
        32,
        options.get("temperature", 1.0),
        options.get("top_k", 0),
        options.get("top_p", 1.0),
        torch.Generator().manual_seed(seed),
        options.get("greedy", False),
    )
    assert mine == loop and len(mine) == 20


def test_generate_leaves_the_training_rng_alone(model):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    generate(model, [1], 8, 32, 1.0, 0, 1.0, torch.Generator().manual_seed(0))
    generate(model, [1], 8, 32, greedy=True)  # no generator: must not reseed either
    assert torch.equal(torch.rand(3), expected)


def test_samples_longer_than_the_context_slide(model):
    out = generate(model, [1], 40, 32, greedy=True)
    assert len(out) == 40
