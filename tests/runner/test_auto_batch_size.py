"""train.auto_find_batch_size: halve the micro-batch until a step fits, keeping the effective
batch through accumulation (runner.batch_size, runner.loop)."""

import pytest
import torch

from runner import run_trial
from runner.batch_size import next_smaller, step_memory_mb
from runner.data import prepare_data
from runner.errors import ConfigError
from runner.loss import forward_loss
from runner.metrics_log import read_metrics
from runner.model import build_model


def test_next_smaller_keeps_the_product_whole():
    assert [next_smaller(n) for n in (16, 8, 6, 9, 3, 2)] == [8, 4, 3, 3, 1, 1]


def step_mb(config, size):
    data = prepare_data(config)
    torch.manual_seed(0)
    model = build_model(config, data.tokenizer.vocab_size, data.tokenizer.pad_id)
    return step_memory_mb(model, lambda: forward_loss(model, data.train_batch(0, size), "lm")[0])


def test_a_budget_the_configured_size_exceeds_halves_it_and_doubles_accumulation(
    tiny_lm_config, tmp_path
):
    base = tiny_lm_config("train.max_steps=3", "eval.eval_steps=3")
    full, half = step_mb(base, 8), step_mb(base, 4)
    assert half < full  # activations grow with the batch
    budget = (full + half) / 2  # the configured 8 does not fit, 4 does: an injected OOM
    auto = run_trial(
        tiny_lm_config(
            "train.max_steps=3",
            "eval.eval_steps=3",
            "train.auto_find_batch_size=true",
            f"train.cpu_memory_budget_mb={budget}",
        )
    )
    assert auto.status == "complete"
    assert auto.batch_size["per_device_train_batch_size"] == 4
    assert auto.batch_size["gradient_accumulation_steps"] == 2
    assert [t["fits"] for t in auto.batch_size["tried"]] == [False, True]
    assert auto.batch_size["tried"][0]["step_memory_mb"] > budget
    # the same 8 blocks per step, in two micro-batches: the same training as the plain run
    auto_loss = [r["loss"] for r in read_metrics(tmp_path / "trial" / "metrics.jsonl", "train")]
    plain = run_trial(
        tiny_lm_config("train.max_steps=3", "eval.eval_steps=3", f"output_dir={tmp_path / 'p'}")
    )
    plain_loss = [r["loss"] for r in read_metrics(tmp_path / "p" / "metrics.jsonl", "train")]
    assert plain.batch_size is None
    assert auto_loss == pytest.approx(plain_loss, abs=1e-4)


def test_a_budget_below_one_example_is_a_config_error(tiny_lm_config):
    config = tiny_lm_config("train.auto_find_batch_size=true", "train.cpu_memory_budget_mb=0.01")
    with pytest.raises(ConfigError, match="cpu_memory_budget_mb: even a micro-batch of 1"):
        run_trial(config)


def test_auto_batch_size_is_refused_for_classify(tiny_lm_config):
    with pytest.raises(ConfigError, match="auto_find_batch_size"):
        tiny_lm_config("task=classify", "train.auto_find_batch_size=true")
