"""Monitoring records: activations, train accuracy, eval latency, per-epoch summaries, plots,
and num_train_epochs setting the trial's steps."""

from __future__ import annotations

from runner.data import prepare_data
from runner.loop import run_trial
from runner.metrics_log import read_metrics
from runner.monitor import warn_without_nvml
from runner.trial_setup import micro_batches_per_epoch

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_lm_trial_by_epochs_logs_activations_latency_epochs_and_plots(tiny_lm_config, tmp_path):
    config = tiny_lm_config(
        "data.max_chars=2000",
        "train.num_train_epochs=2",
        "train.logging_steps=4",
        "train.log_activations=true",
        "train.optim=adamw_torch",
        "eval.metric_for_best_model=eval_loss",
        "eval.sample_tokens=0",
    )
    per_epoch = micro_batches_per_epoch(prepare_data(config), 8)
    result = run_trial(config)
    assert result.status == "complete"
    assert result.steps == 2 * per_epoch  # not train.max_steps (30)
    out = tmp_path / "trial"
    records = read_metrics(out / "metrics.jsonl")
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [(r["epoch"], r["step"], r["steps"]) for r in epochs] == [
        (1, per_epoch, per_epoch),
        (2, 2 * per_epoch, per_epoch),
    ]
    assert epochs[1]["loss"] < epochs[0]["loss"]  # it learns
    activations = [r for r in records if r["type"] == "activations"]
    train_steps = [r["step"] for r in records if r["type"] == "train"]
    assert [r["step"] for r in activations] == train_steps  # at the logging interval only
    stats = activations[-1]
    assert set(stats) == {
        "type", "step", "block.0.mean", "block.0.std", "block.0.zero_fraction",
    }  # fmt: skip
    assert stats["block.0.std"] > 0 and 0 <= stats["block.0.zero_fraction"] < 1
    evals = [r for r in records if r["type"] == "eval"]
    assert evals and all(r["val_latency_ms"] > 0 for r in evals)
    for name in ("lr.png", "grad_norm.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert result.objective == "val_loss"


def test_activation_records_are_off_by_default(tiny_lm_config, tmp_path):
    config = tiny_lm_config("train.max_steps=3", "eval.eval_steps=3", "eval.sample_tokens=0")
    run_trial(config)
    kinds = {r["type"] for r in read_metrics(tmp_path / "trial" / "metrics.jsonl")}
    assert "activations" not in kinds and "train" in kinds


def test_classify_logs_train_accuracy(tmp_path):
    from runner.config import config_from_dict

    rows = ["text,label"] + [
        f"{'good fun witty ' * (i % 5 + 1)},pos"
        if i % 2
        else f"{'bad dull flat ' * (i % 5 + 1)},neg"
        for i in range(60)
    ]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    config = config_from_dict(
        {
            "task": "classify",
            "output_dir": str(tmp_path / "trial"),
            "data": {
                "path": str(tmp_path / "r.csv"),
                "tokenizer": "char",
                "max_length": 64,
                "max_tokens_per_batch": 256,
                "cache_dir": str(tmp_path / "cache"),
            },
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 32},
            "train": {"max_steps": 12, "learning_rate": 3e-3, "logging_steps": 4},
            "eval": {"eval_steps": 12, "metric_for_best_model": "eval_accuracy"},
        }
    )
    result = run_trial(config)
    records = read_metrics(tmp_path / "trial" / "metrics.jsonl")
    accuracy = [r["train_accuracy"] for r in records if r["type"] == "train"]
    assert len(accuracy) == 3 and all(0 <= a <= 1 for a in accuracy)
    epochs = [r for r in records if r["type"] == "epoch"]
    assert epochs and all(0 <= r["train_accuracy"] <= 1 for r in epochs)
    assert result.objective == "val_accuracy"


def test_no_nvml_warning_off_cuda():
    import torch

    assert warn_without_nvml(torch.device("cpu")) is False


def test_report_to_tensorboard_writes_the_records_tensorboard_reads(tiny_lm_config, tmp_path):
    import pytest

    pytest.importorskip("tensorboard", reason="report_to tensorboard needs the tensorboard extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_lm_config(
        "train.max_steps=4",
        "train.logging_steps=2",
        "eval.eval_steps=4",
        "eval.sample_tokens=0",
        "train.report_to=tensorboard",
    )
    run_trial(config)
    events = EventAccumulator(str(tmp_path / "trial" / "tensorboard"))
    events.Reload()
    records = read_metrics(tmp_path / "trial" / "metrics.jsonl")
    logged = {r["step"]: r["loss"] for r in records if r["type"] == "train"}
    scalars = {e.step: e.value for e in events.Scalars("train/loss")}
    assert scalars.keys() == logged.keys() == {2, 4}
    assert all(abs(scalars[s] - logged[s]) < 1e-5 for s in logged)  # the same numbers
    assert [e.step for e in events.Scalars("eval/val_loss")] == [4]
