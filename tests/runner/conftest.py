import random
from pathlib import Path

import pytest

from runner.config import config_from_dict


class StopAt:
    """A Reporter that asks the trial to stop at the first evaluation at or after `step`."""

    def __init__(self, step: int) -> None:
        self.step, self.reports = step, []

    def report(self, step, metrics):
        self.reports.append((step, dict(metrics)))

    def should_stop(self):
        return bool(self.reports) and self.reports[-1][0] >= self.step


@pytest.fixture
def stop_at():
    """StopAt(step): a Reporter that stops the trial at its first evaluation at or after step."""
    return StopAt


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """About 60 kB of varied English-like text in paragraphs: enough for train and val blocks."""
    rng = random.Random(0)
    words = (
        "the quick brown fox jumps over a lazy dog while seven wizards quietly "
        "judge boxing matches near old river banks"
    ).split()
    paragraphs = [
        " ".join(rng.choice(words) for _ in range(rng.randint(20, 60))) for _ in range(300)
    ]
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(paragraphs))
    return path


@pytest.fixture
def tiny_lm_config(tiny_corpus, tmp_path):
    """A char-level lm small enough that 30 steps take about a second."""

    def make(*overrides: str):
        base = {
            "task": "lm",
            "output_dir": str(tmp_path / "trial"),
            "data": {
                "path": str(tiny_corpus),
                "tokenizer": "char",
                "block_size": 32,
                "min_doc_chars": 1,
            },
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 32},
            "train": {
                "max_steps": 30,
                "per_device_train_batch_size": 8,
                "learning_rate": 3e-3,
                "logging_steps": 1,
                "warmup_steps": 5,
            },
            "eval": {"eval_steps": 10, "max_eval_batches": 4, "sample_tokens": 8},
        }
        return config_from_dict(base, list(overrides))

    return make
