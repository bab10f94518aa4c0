"""The default experiment clearly learns: well below the unigram baseline, within a minute."""

import json
from pathlib import Path

import pytest

from runner import load_config, run_trial
from runner.metrics_log import read_metrics

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_lm_tiny_beats_the_unigram_baseline_by_a_wide_margin(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = load_config("experiments/lm_tiny.yaml", [f"output_dir={tmp_path}"])
    result = run_trial(config)
    assert result.status == "complete"
    data = read_metrics(tmp_path / "metrics.jsonl", "data")[0]
    unigram = data["unigram_val_loss"]
    # the README quotes both figures (3.80 against 5.93); 1.5 nats below unigram is a 4.5x
    # lower perplexity, which the tied-embedding model (4.45) did not reach
    assert result.best_value < unigram - 1.5, (result.best_value, unigram)
    print(
        json.dumps(
            {
                "unigram_val_loss": unigram,
                "val_loss": result.best_value,
                "wall_seconds": result.wall_seconds,
            }
        )
    )
