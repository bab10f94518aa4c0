"""train.dataloader_*: batches from worker processes are the batches the trial's own process
would build, so training is the same (runner.data.loader)."""

import pytest

from runner import run_trial
from runner.errors import ConfigError
from runner.metrics_log import read_metrics


def test_worker_processes_train_on_the_same_batches(tiny_lm_config, tmp_path):
    runs = {}
    for name, options in (
        ("inline", ()),
        ("workers", ("train.dataloader_num_workers=2", "train.dataloader_prefetch_factor=3")),
    ):
        out = tmp_path / name
        result = run_trial(
            tiny_lm_config("train.max_steps=4", "eval.eval_steps=4", f"output_dir={out}", *options)
        )
        assert result.status == "complete"
        runs[name] = [r["loss"] for r in read_metrics(out / "metrics.jsonl", "train")]
    assert runs["workers"] == runs["inline"] and len(runs["inline"]) == 4


def test_prefetch_without_workers_is_refused(tiny_lm_config):
    with pytest.raises(ConfigError, match="dataloader_prefetch_factor"):
        tiny_lm_config("train.dataloader_prefetch_factor=2")
