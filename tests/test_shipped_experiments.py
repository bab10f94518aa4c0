"""Every shipped experiment and space runs from the repository's own files.

A copy of the project as a fresh clone has it (tracked and new files, nothing ignored) is made
in a temporary folder, so no path can reach ../shared or anything else beside the repository;
then one short trial of every experiment in experiments/ (`hpo train`) and one trial of every
space in experiments/spaces/ (`hpo search`) runs there, with the model shrunk and a few steps:
what is checked is that the defaults find their data and build, not how well they learn.

gpt2_small is also shrunk in its data: as shipped it trains a BPE of 50,304 tokens on the whole
standard library and a 124M-parameter model with torch.compile, minutes on a CPU before the first
step. Its own code path (bf16 autocast, gradient accumulation) still runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hpo.cli import main

ROOT = Path(__file__).parents[1]
EXPERIMENTS = sorted(p.name for p in (ROOT / "experiments").glob("*.yaml"))
SPACES = sorted(p.name for p in (ROOT / "experiments/spaces").glob("*.yaml"))
SHRINK = {
    "model.n_layer": 1,
    "model.n_head": 2,
    "model.n_embd": 32,
    "eval.eval_steps": 2,
    "eval.max_eval_batches": 2,
}
# per experiment, on top of SHRINK: the lm corpora cut to what a few steps need (a BPE is trained
# on them), and no text samples at each evaluation (200 tokens of shakespeare_char's cost more
# than its training steps)
SHRINK_DATA = {
    "lm_tiny.yaml": {"data.max_chars": 30_000, "eval.sample_tokens": 0},
    "shakespeare_char.yaml": {"eval.sample_tokens": 0},
    "gpt2_small.yaml": {
        "data.max_chars": 30_000,
        "eval.sample_tokens": 0,
        "data.vocab_size": 512,
        "data.block_size": 32,
        "train.torch_compile": False,
        "train.per_device_train_batch_size": 4,
        "train.gradient_accumulation_steps": 2,
    },
}


def overrides(experiment: str) -> list[str]:
    values = {**SHRINK, **SHRINK_DATA.get(experiment, {})}
    return [arg for key, value in values.items() for arg in ("-o", f"{key}={value}")]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The project's files as a fresh clone has them, without tests and benchmarks."""
    target = tmp_path_factory.mktemp("clone") / "hpo"
    names = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for name in filter(None, names):
        if name.startswith(("tests/", "bench/")) or not (ROOT / name).is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    assert not (target.parent / "shared").exists()
    return target


@pytest.fixture
def in_clone(clone, monkeypatch, tmp_path) -> Path:
    monkeypatch.chdir(clone)
    monkeypatch.setenv("HPO_CACHE_DIR", str(tmp_path / "cache"))  # nothing from earlier runs
    return clone


def test_the_shipped_experiments_name_no_path_outside_the_repository():
    for path in sorted((ROOT / "experiments").rglob("*.yaml")):
        assert "shared" not in path.read_text(), path


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_each_shipped_experiment_trains_from_the_repository_alone(in_clone, tmp_path, experiment):
    out = tmp_path / "trial"
    args = ["train", "--quiet", "--config", f"experiments/{experiment}", *overrides(experiment)]
    code = main([*args, "-o", "train.max_steps=4", "--output", str(out)])
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "complete" and result["steps"] == 4
    assert "val_loss" in result["final_metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("space", SPACES)
def test_each_shipped_space_searches_from_the_repository_alone(in_clone, tmp_path, space):
    import yaml

    raw = yaml.safe_load((in_clone / "experiments/spaces" / space).read_text())
    # a command space runs its own script (no runner config to shrink); the others an experiment
    shrink = [] if "command" in raw else overrides(Path(raw["experiment"]).name)
    args = ["search", "--space", f"experiments/spaces/{space}", "--trials", "1"]
    args += ["--max-steps", "4", "--runs", str(tmp_path / "runs"), "--no-track", "--quiet"]
    assert main([*args, *shrink]) == 0
    summary = json.loads((tmp_path / "runs" / Path(space).stem / "summary.json").read_text())
    assert summary["n_trials"]["complete"] + summary["n_trials"]["pruned"] == 1


def test_the_shipped_sentiment_corpus_is_what_its_generator_writes(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "data/generate_sentiment.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for name in ("sentiment.pos", "sentiment.neg"):
        made = (tmp_path / name).read_bytes()
        assert made == (ROOT / "data/sentiment" / name).read_bytes(), name
        assert len(made.splitlines()) == 2000
    positive = set((tmp_path / "sentiment.pos").read_text().splitlines())
    assert not positive & set((tmp_path / "sentiment.neg").read_text().splitlines())


def test_the_shipped_aspect_corpus_is_what_its_generator_writes(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "data/generate_aspect.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    classes = {}
    for label in ("story", "cast", "craft"):
        made = (tmp_path / f"aspect.{label}").read_bytes()
        assert made == (ROOT / "data/aspect" / f"aspect.{label}").read_bytes(), label
        classes[label] = set(made.decode().splitlines())
        assert len(classes[label]) == 600
    assert not classes["story"] & classes["cast"] and not classes["cast"] & classes["craft"]
    assert not classes["story"] & classes["craft"]


def test_the_shipped_play_corpus_is_what_its_generator_writes(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "data/generate_play.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    made = (tmp_path / "play.txt").read_bytes()
    assert made == (ROOT / "data/play/play.txt").read_bytes()
    made = made.decode("utf-8")
    # the play's shape, which the char model is there to learn: speakers in capitals before a
    # colon on their own line, each speech a paragraph, a recurring cast
    speeches = [p for p in made.split("\n\n") if p.split("\n")[0].endswith(":")]
    speakers = {p.split("\n")[0] for p in speeches}
    assert len(speeches) > 1000 and 5 <= len(speakers) <= 20
    assert all(s[:-1].replace(" ", "").isupper() for s in speakers), speakers
    assert all(len(p.split("\n")) >= 2 for p in speeches)


def test_the_shipped_corpora_are_small_and_documented():
    readme = (ROOT / "data/README.md").read_text()
    for path in (
        "play/play.txt",
        "sentiment/sentiment.pos",
        "sentiment/sentiment.neg",
        "aspect/aspect.story",
        "aspect/aspect.cast",
        "aspect/aspect.craft",
    ):
        assert (ROOT / "data" / path).stat().st_size < 300_000, path
        assert path in readme or Path(path).name in readme, path
