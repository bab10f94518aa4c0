import json
import math

import pytest
import torch

import runner.train_step
from runner import run_trial
from runner.checkpoint import load_checkpoint
from runner.metrics_log import read_metrics
from runner.reporting import NullReporter


def losses(output_dir) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(output_dir / "metrics.jsonl", "train")]


@pytest.mark.slow
def test_resume_continues_from_last_step_and_ends_bit_identical(tiny_lm_config, stop_at, tmp_path):
    # dropout on, so RNG state must travel with the checkpoint too
    whole = tiny_lm_config(f"output_dir={tmp_path / 'whole'}", "model.dropout=0.1")
    full = run_trial(whole)
    split = tiny_lm_config(f"output_dir={tmp_path / 'split'}", "model.dropout=0.1")
    stopped = run_trial(split, stop_at(10))
    assert stopped.status == "pruned" and stopped.steps == 10
    resumed = run_trial(split, resume=True)
    assert resumed.status == "complete" and resumed.steps == full.steps == 30

    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert losses(tmp_path / "whole") == losses(tmp_path / "split")
    assert resumed.best_metrics == full.best_metrics


def test_result_json_and_metrics_jsonl_describe_the_trial(tiny_lm_config, tmp_path):
    result = run_trial(tiny_lm_config())
    out = tmp_path / "trial"
    saved = json.loads((out / "result.json").read_text())
    assert saved["status"] == "complete" and saved["steps"] == 30
    assert set(saved["best_metrics"]) == {"val_loss", "val_perplexity"}
    assert saved["best_checkpoint"].endswith("best.pt") and saved["last_checkpoint"].endswith(
        "last.pt"
    )
    evals = read_metrics(out / "metrics.jsonl", "eval")
    assert [r["step"] for r in evals] == [10, 20, 30]
    assert result.best_value == min(r["val_loss"] for r in evals)
    assert math.isclose(evals[-1]["val_perplexity"], math.exp(evals[-1]["val_loss"]))
    train = read_metrics(out / "metrics.jsonl", "train")
    assert {"loss", "lr", "grad_norm", "tokens_per_sec", "step_time", "peak_memory_mb"} <= set(
        train[0]
    )
    assert train[-1]["loss"] < train[0]["loss"], "the model did not learn anything in 30 steps"
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [10, 20, 30] and all(s["greedy"] for s in samples)


def test_best_checkpoint_is_the_best_evaluation_not_the_last(tiny_lm_config, tmp_path):
    # a learning rate this large makes the loss climb after the first evaluation
    result = run_trial(
        tiny_lm_config("train.learning_rate=0.5", "train.warmup_steps=0", "train.max_grad_norm=0")
    )
    best = load_checkpoint(result.best_checkpoint)
    assert best["trial"]["best_step"] == result.best_step
    evals = {
        r["step"]: r["val_loss"] for r in read_metrics(tmp_path / "trial" / "metrics.jsonl", "eval")
    }
    assert result.best_value == min(evals.values())


def test_clipping_records_the_pre_clip_norm_and_bounds_the_update(tiny_lm_config, tmp_path):
    config = tiny_lm_config(
        "train.max_steps=1",
        "train.optim=sgd",
        "train.sgd_momentum=0",
        "train.learning_rate=1.0",
        "train.warmup_steps=0",
        "train.max_grad_norm=0.01",
        "eval.sample_tokens=0",
    )
    from runner.data import prepare_data
    from runner.model import build_model
    from runner.seeding import seed_everything

    data = prepare_data(config)
    seed_everything(config.seed)
    initial = build_model(config, data.tokenizer.vocab_size, data.tokenizer.pad_id).state_dict()
    result = run_trial(config)
    after = load_checkpoint(result.last_checkpoint)["model"]
    step = math.sqrt(
        sum(
            (after[k].float() - initial[k].float()).pow(2).sum().item()
            for k in initial
            if k in after and not k.startswith("lm_head")
        )
    )  # tied to wte
    logged = read_metrics(tmp_path / "trial" / "metrics.jsonl", "train")[0]["grad_norm"]
    assert logged > 0.01, "the logged norm must be the norm before clipping"
    assert step == pytest.approx(0.01, rel=0.05), "SGD with lr 1 moves by the clipped norm"


def test_non_finite_steps_are_skipped_and_do_not_reach_the_weights(tiny_lm_config, monkeypatch):
    poisoned = {3, 4}
    calls = {"n": 0}
    real = runner.train_step.forward_loss

    def sometimes_nan(model, batch, task, *args):
        loss, logits = real(model, batch, task, *args)
        if model.training:
            calls["n"] += 1
            if calls["n"] in poisoned:
                loss = loss * float("nan")
        return loss, logits

    monkeypatch.setattr(runner.train_step, "forward_loss", sometimes_nan)
    result = run_trial(tiny_lm_config())
    assert result.status == "complete"
    assert result.events["nonfinite"] == 2
    assert math.isfinite(result.final_metrics["val_loss"])
    weights = load_checkpoint(result.last_checkpoint)["model"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_consecutive_non_finite_steps_fail_the_trial_with_the_reason(tiny_lm_config, monkeypatch):
    real = runner.train_step.forward_loss

    def nan_from_step_5(model, batch, task, *args):
        loss, logits = real(model, batch, task, *args)
        nan_from_step_5.n += model.training
        return (loss * float("nan") if nan_from_step_5.n > 5 else loss), logits

    nan_from_step_5.n = 0
    monkeypatch.setattr(runner.train_step, "forward_loss", nan_from_step_5)
    result = run_trial(tiny_lm_config("train.max_nonfinite_steps=3"))
    assert result.status == "failed"
    assert "3 consecutive non-finite steps" in result.reason
    assert result.steps == 8


def test_early_stopping_ends_after_patience_evaluations_without_improvement(tiny_lm_config):
    result = run_trial(
        tiny_lm_config(
            "train.learning_rate=0", "eval.early_stopping_patience=1", "train.max_steps=100"
        )
    )
    assert result.status == "complete"
    assert result.steps == 20
    assert "early stopping" in result.reason


def test_anomaly_events_are_logged_and_counted(tiny_lm_config, tmp_path):
    result = run_trial(tiny_lm_config("monitor.grad_norm_explode=0.0", "train.max_steps=5"))
    events = read_metrics(tmp_path / "trial" / "metrics.jsonl", "event")
    assert result.events["grad_explode"] == 5 == sum(e["event"] == "grad_explode" for e in events)


def test_layer_grad_norms_are_logged_every_n_steps(tiny_lm_config, tmp_path):
    run_trial(tiny_lm_config("monitor.layer_grad_norm_steps=5", "train.max_steps=10"))
    records = read_metrics(tmp_path / "trial" / "metrics.jsonl", "layer_grad_norms")
    assert [r["step"] for r in records] == [5, 10]
    assert any(k.startswith("transformer.h.0") for k in records[0]) and all(
        v > 0 for k, v in records[0].items() if k not in ("type", "step")
    )


def test_label_smoothing_matches_its_definition():
    from runner.loss import forward_loss

    class Fixed(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": torch.tensor([[2.0, 0.0, -1.0]])})()

    batch = {
        "input_ids": torch.zeros(1, 2, dtype=torch.long),
        "attention_mask": torch.ones(1, 2, dtype=torch.long),
        "labels": torch.tensor([0]),
    }
    logp = torch.log_softmax(torch.tensor([2.0, 0.0, -1.0]), -1)
    expected = 0.9 * -logp[0] + 0.1 * -logp.mean()
    loss, _ = forward_loss(Fixed(), batch, "classify", label_smoothing=0.1)
    assert loss.item() == pytest.approx(expected.item())


def test_weight_decay_skips_biases_norms_and_embeddings(tiny_lm_config):
    from runner.model import build_model
    from runner.optim import decay_groups

    model = build_model(tiny_lm_config(), vocab_size=50, pad_id=0)
    decay, keep = decay_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert decayed and all(("attn" in n or "mlp" in n) and n.endswith("weight") for n in decayed)
    assert any("wte" in names[id(p)] for p in keep["params"])
    assert any("ln_" in names[id(p)] for p in keep["params"])


def test_null_reporter_never_stops():
    assert NullReporter().should_stop() is False
