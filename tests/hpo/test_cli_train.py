"""`hpo train`: end to end on each shipped experiment, bad input, interrupt and resume."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hpo.cli import main
from runner.checkpoint import load_checkpoint
from runner.jsonl import read_records
from runner.metrics_log import reproducible

ROOT = Path(__file__).parents[2]
TINY = [
    "-o",
    "model.n_layer=1",
    "-o",
    "model.n_embd=32",
    "-o",
    "model.n_head=2",
    "-o",
    "train.max_steps=6",
    "-o",
    "eval.eval_steps=3",
    "-o",
    "eval.max_eval_batches=2",
]


@pytest.fixture(autouse=True)
def in_project(monkeypatch):
    monkeypatch.chdir(ROOT)  # the commands name experiments/ relative to the project root


def train(*args: str) -> int:
    return main(["train", "--quiet", *args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("hpo: error: ")
    return err[0]


@pytest.mark.slow
def test_hpo_train_runs_the_default_experiment_as_a_console_script(tmp_path):
    out = tmp_path / "trial"
    proc = subprocess.run(
        [
            Path(sys.executable).with_name("hpo"),
            "train",
            "--config",
            "experiments/lm_tiny.yaml",
            *TINY,
            "-o",
            "data.max_chars=200000",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "step 6/6" in proc.stderr and "tok/s" in proc.stderr and "ETA" in proc.stderr
    assert "status      complete" in proc.stdout and "best ckpt" in proc.stdout
    assert "doc_tokens_p50" in proc.stderr, "token-length statistics are reported"
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "complete" and result["steps"] == 6
    assert (out / "metrics.jsonl").read_text().count('"type": "eval"') == 2


# Every shipped experiment and space, from the repository's files alone (its own corpora in
# data/): tests/test_shipped_experiments.py.


def bad_corpus(tmp_path: Path, kind: str) -> list[str]:
    if kind == "missing":
        return ["-o", f"data.path={tmp_path / 'nope.txt'}"]
    if kind == "empty":
        (tmp_path / "empty.txt").write_text("")
        return ["-o", f"data.path={tmp_path / 'empty.txt'}"]
    if kind == "tiny":
        (tmp_path / "tiny.txt").write_text("just a few words here\n\nand a few more words there\n")
        return [
            "-o",
            f"data.path={tmp_path / 'tiny.txt'}",
            "-o",
            "data.tokenizer=char",
            "-o",
            "data.block_size=512",
            "-o",
            "data.min_doc_chars=1",
        ]
    if kind == "one_class":
        folder = tmp_path / "labels"
        folder.mkdir()
        (folder / "pos.txt").write_text("good film\ngreat film\nfine film\n")
        return ["--config", "experiments/rt_polarity.yaml", "-o", f"data.path={folder}"]
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("missing data path", "missing", "nope.txt"),
        ("empty corpus", "empty", "empty"),
        ("block size larger than corpus", "tiny", "block_size"),
        ("a label set with one class", "one_class", "class"),
        ("batch size 0", ["-o", "train.per_device_train_batch_size=0"], "must be > 0"),
        (
            "unknown precision",
            ["-o", "train.precision=fp64"],
            "expected auto, bf16, fp16 or fp32, got 'fp64' (train.precision)",
        ),
        (
            "negative learning rate",
            ["-o", "train.learning_rate=-1e-3"],
            "must be >= 0, got -0.001 (train.learning_rate)",
        ),
        ("unknown key", ["-o", "train.lr=1"], "unknown config key 'train.lr'"),
        ("missing config", ["--config", "experiments/nope.yaml"], "experiment file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, args, message, tmp_path, capsys):
    out = tmp_path / "out"
    extra = bad_corpus(tmp_path, args) if isinstance(args, str) else args
    assert train(*extra, "--output", str(out)) == 2, case
    assert message in one_error_line(capsys)
    assert not out.exists(), "nothing may be written for bad input"


def test_resume_from_a_checkpoint_that_is_not_ours_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    foreign = out / "checkpoints" / "last.pt"
    torch.save({"model": {}}, foreign)
    before = foreign.read_bytes()
    assert train(*TINY, "--output", str(out), "--resume") == 2
    assert "not a checkpoint written by the hpo runner" in one_error_line(capsys)
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in out.rglob("*")) == ["checkpoints", "last.pt"]


def test_resume_without_a_checkpoint_is_refused(tmp_path, capsys):
    assert train(*TINY, "--output", str(tmp_path / "none"), "--resume") == 2
    assert "checkpoint not found" in one_error_line(capsys)


@pytest.mark.slow
def test_ctrl_c_saves_the_last_checkpoint_and_resume_finishes_the_trial(tmp_path):
    out = tmp_path / "trial"
    args = [
        str(Path(sys.executable).with_name("hpo")),
        "train",
        "--quiet",
        *TINY,
        "-o",
        "train.max_steps=200",
        "-o",
        "train.logging_steps=1",
        "-o",
        "eval.eval_steps=1000",
        "-o",
        "data.max_chars=200000",
        "--output",
        str(out),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or '"train"' not in metrics.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout
    interrupted = json.loads((out / "result.json").read_text())
    assert interrupted["status"] == "interrupted" and 0 < interrupted["steps"] < 200
    assert (out / "checkpoints" / "last.pt").exists()
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "complete" and result["steps"] == 200
    steps = [
        json.loads(line)["step"] for line in metrics.read_text().splitlines() if '"train"' in line
    ]
    assert steps == sorted(set(steps)), "the resumed curve repeats or skips no step"


@pytest.mark.slow
def test_prepare_and_evaluate_commands_write_their_json(tmp_path, capsys):
    stats = tmp_path / "stats.json"
    assert main(["prepare", "-o", "data.max_chars=200000", "--stats", str(stats)]) == 0
    assert json.loads(stats.read_text())["train_tokens"] > 0
    out = tmp_path / "trial"
    assert train(*TINY, "-o", "data.max_chars=200000", "--output", str(out)) == 0
    metrics = tmp_path / "metrics.json"
    curves = tmp_path / "plots"
    assert (
        main(
            [
                "evaluate",
                str(out / "checkpoints" / "best.pt"),
                "--metrics",
                str(metrics),
                "--curves",
                str(curves),
            ]
        )
        == 0
    )
    assert json.loads(metrics.read_text())["val_loss"] > 0
    assert (curves / "train.csv").read_text().splitlines()[0] == "step,loss,lr,grad_norm"
    val = (curves / "val.csv").read_text().splitlines()
    assert val[0] == "step,val_loss,val_perplexity" and len(val) == 3
    capsys.readouterr()
    assert main(["evaluate", str(stats)]) == 2
    assert "not a readable runner checkpoint" in one_error_line(capsys)


# ------------------------------------------------------------ signals, kill -9 and a full disk


def char_corpus(tmp_path: Path) -> list[str]:
    """Overrides for a small char-level lm on ~60 kB of text: a few hundred steps in seconds."""
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog near old river banks".split()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n\n".join(
            " ".join(rng.choice(words) for _ in range(rng.randint(20, 60))) for _ in range(300)
        )
    )
    settings = {
        "data.path": corpus,
        "data.tokenizer": "char",
        "data.block_size": 32,
        "data.min_doc_chars": 1,
        "model.n_layer": 1,
        "model.n_head": 2,
        "model.n_embd": 32,
        "train.per_device_train_batch_size": 8,
        "train.learning_rate": 3e-3,
        "train.warmup_steps": 5,
        "model.dropout": 0.1,  # the RNG state must travel with the checkpoint too
        "eval.max_eval_batches": 2,
        "eval.sample_tokens": 8,
    }
    return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]


def hpo_train(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("hpo")), "train", "--quiet", *args]


def wait_for_step(proc: subprocess.Popen, metrics: Path, step: int, timeout: float = 120) -> int:
    """The step of the newest train record once it reaches `step` (the process still running)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the trial ended before the test could signal it"
        records = read_records(metrics) if metrics.exists() else []
        steps = [r["step"] for r in records if r["type"] == "train"]
        if steps and steps[-1] >= step:
            return steps[-1]
        time.sleep(0.05)
    raise AssertionError(f"no train record at step {step} within {timeout} s")


def history(out: Path, name: str = "metrics.jsonl") -> list[dict]:
    return [reproducible(r) for r in read_records(out / name)]


@pytest.mark.slow
def test_ctrl_c_or_kill_9_then_resume_logs_the_uninterrupted_run_s_history(tmp_path):
    # the train-metric window (3 steps) spans the checkpoints (every 10): the logged loss after
    # a resume is exact only if the window travels in the checkpoint
    common = [
        *char_corpus(tmp_path),
        "-o",
        "train.max_steps=60",
        "-o",
        "train.logging_steps=3",
        "-o",
        "eval.eval_steps=10",
    ]
    whole = tmp_path / "whole"
    done = subprocess.run(
        hpo_train(*common, "--output", str(whole)), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr

    # Ctrl-C: the step ends, last.pt is saved, --resume goes on from there
    ctrl_c = tmp_path / "ctrl_c"
    proc = subprocess.Popen(
        hpo_train(*common, "--output", str(ctrl_c)), stderr=subprocess.PIPE, text=True
    )
    wait_for_step(proc, ctrl_c / "metrics.jsonl", 13)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130, proc.stderr.read()
    stopped = json.loads((ctrl_c / "result.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["steps"] < 60

    # kill -9, frozen first (SIGSTOP) at a moment when it has logged steps past its last.pt
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        hpo_train(*common, "--output", str(killed)), stderr=subprocess.PIPE, text=True
    )
    last = killed / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while True:
        wait_for_step(proc, killed / "metrics.jsonl", 13)
        proc.send_signal(signal.SIGSTOP)
        logged = max(r["step"] for r in read_records(killed / "metrics.jsonl"))
        saved = load_checkpoint(last)["trial"]["step"] if last.exists() else None
        if saved is not None and logged > saved:
            break
        assert time.time() < deadline, "never caught it with records past its checkpoint"
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    for out, resumed_from in ((ctrl_c, stopped["steps"]), (killed, saved)):
        again = subprocess.run(
            hpo_train(*common, "--output", str(out), "--resume"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert again.returncode == 0, again.stderr
        result = json.loads((out / "result.json").read_text())
        assert result["status"] == "complete" and result["resumed_from_step"] == resumed_from
        records = history(out)
        assert [r["type"] for r in records].count("data") == 1
        assert [(r["type"], r["step"]) for r in records] == [
            (r["type"], r["step"]) for r in history(whole)
        ]
        assert records == history(whole), f"{out.name}: the resumed history differs"
        assert history(out, "samples.jsonl") == history(whole, "samples.jsonl")


@pytest.mark.slow
def test_sigterm_saves_the_last_checkpoint_and_ends_interrupted(tmp_path):
    out = tmp_path / "trial"
    args = [*char_corpus(tmp_path), "-o", "train.max_steps=2000", "-o", "train.logging_steps=1"]
    proc = subprocess.Popen(
        hpo_train(*args, "--output", str(out)), stdout=subprocess.PIPE, text=True
    )
    wait_for_step(proc, out / "metrics.jsonl", 2)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout  # hpo train's code for an interrupted trial
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "interrupted" and "SIGTERM" in result["reason"]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["trial"]["step"] == result["steps"]
    steps = [r["step"] for r in read_records(out / "metrics.jsonl") if r["type"] == "train"]
    assert steps == list(range(1, result["steps"] + 1)), "every step up to the stop is logged"


def test_hpo_train_on_a_full_disk_prints_one_reason_and_exits_1(tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    # a real tmpfs too small for one checkpoint (~690 kB) but not for config.yaml and the logs
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"a real disk-full test needs `mount -t tmpfs` (root): {mount.stderr.strip()}")
    try:
        out = disk / "trial"
        args = [*char_corpus(tmp_path), "-o", "model.n_embd=64", "-o", "train.max_steps=6"]
        args += ["-o", "train.save_steps=2", "-o", "eval.eval_steps=1000", "--output", str(out)]
        assert train(*args) == 1
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err and "Error" not in captured.err
        reason = f"no space left on device while writing {out}/checkpoints/last.pt at step 2"
        assert f"status      failed ({reason})" in captured.out.splitlines()
        assert json.loads((out / "result.json").read_text())["reason"] == reason
        assert not list((out / "checkpoints").iterdir()), "no half checkpoint is left behind"
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
