"""fp16 with a GradScaler on CPU (train.precision=fp16): the overflow-skip and
unscale-before-clip paths run here, without a GPU (runner.precision, runner.loop)."""

import logging

import torch
import transformers

import runner.trial_setup
from runner import run_trial
from runner.checkpoint import load_checkpoint
from runner.config import TrainConfig
from runner.loss import forward_loss
from runner.precision import resolve_precision, unscale_and_clip

CPU = torch.device("cpu")


def tiny_gpt2() -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=64, n_positions=16, n_embd=32, n_layer=1, n_head=2, use_cache=False
    )
    return transformers.GPT2LMHeadModel(config)


def scaled_backward(model, scaler, precision):
    batch = {"input_ids": torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(1))}
    with precision.autocast():
        loss, _ = forward_loss(model, batch, "lm")
    scaler.scale(loss).backward()


def test_fp16_on_cpu_autocasts_to_float16_with_a_scaler_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="runner"):
        precision = resolve_precision(TrainConfig(precision="fp16"), CPU)
    assert precision.autocast_dtype == torch.float16 and precision.use_grad_scaler
    assert any("for testing" in r.message for r in caplog.records)


def test_an_inf_gradient_skips_the_step_and_lowers_the_scale():
    model, precision = tiny_gpt2(), resolve_precision(TrainConfig(precision="fp16"), CPU)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaled_backward(model, scaler, precision)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    next(model.parameters()).grad.view(-1)[0] = float("inf")  # the injected overflow
    grad_norm = unscale_and_clip(scaler, optimizer, list(model.parameters()), 1.0)
    scaler.step(optimizer)
    scaler.update()
    assert not torch.isfinite(grad_norm)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "step not skipped"
    assert scaler.get_scale() == 512.0
    # the next, finite step is taken
    optimizer.zero_grad()
    scaled_backward(model, scaler, precision)
    assert torch.isfinite(unscale_and_clip(scaler, optimizer, list(model.parameters()), 1.0))
    scaler.step(optimizer)
    assert not torch.equal(before["lm_head.weight"], model.state_dict()["lm_head.weight"])


def test_clipping_sees_the_unscaled_gradients():
    precision = resolve_precision(TrainConfig(precision="fp16"), CPU)
    norms, clipped = [], []
    for scale in (2.0**16, None):  # with the scaler, and without it (same autocast)
        model = tiny_gpt2()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        scaler = torch.amp.GradScaler("cpu", init_scale=scale or 1.0, enabled=scale is not None)
        scaled_backward(model, scaler, precision)
        params = list(model.parameters())
        norms.append(float(unscale_and_clip(scaler, optimizer, params, 0.01)))
        clipped.append(float(torch.nn.utils.get_total_norm([p.grad for p in params])))
    assert abs(norms[0] - norms[1]) <= 1e-3 * norms[1]  # the true norm, not 65536 times it
    assert norms[1] > 0.01 and abs(clipped[0] - 0.01) < 1e-4 and abs(clipped[1] - 0.01) < 1e-4


def test_a_trial_in_fp16_on_cpu_survives_an_overflow(tiny_lm_config, tmp_path, monkeypatch):
    """The loop itself: one backward yields an inf gradient; the trial skips that step,
    halves the scale and trains on."""
    build = runner.trial_setup.build_model
    overflowed = []

    def build_with_one_overflow(*args, **kwargs):
        model = build(*args, **kwargs)

        def once(grad):
            if not overflowed:
                overflowed.append(True)
                return grad * float("inf")
            return grad

        next(model.parameters()).register_hook(once)
        return model

    monkeypatch.setattr(runner.trial_setup, "build_model", build_with_one_overflow)
    result = run_trial(
        tiny_lm_config("train.precision=fp16", "train.max_steps=6", "eval.eval_steps=6")
    )
    assert result.status == "complete" and overflowed
    scaler = load_checkpoint(result.last_checkpoint)["scaler"]
    assert scaler["scale"] == 2.0**15  # 65536 halved once, and no growth within 6 steps
