"""`hpo train`: end to end on each shipped experiment, bad input, interrupt and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hpo.cli import main

ROOT = Path(__file__).parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
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
    monkeypatch.chdir(ROOT)  # experiments name ../shared/data relative to the project root


def train(*args: str) -> int:
    return main(["train", "--quiet", *args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("hpo: error: ")
    return err[0]


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
    assert "status      completed" in proc.stdout and "best ckpt" in proc.stdout
    assert "doc_tokens_p50" in proc.stderr, "token-length statistics are reported"
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed" and result["steps"] == 6
    assert (out / "metrics.jsonl").read_text().count('"type": "eval"') == 2


@pytest.mark.parametrize("experiment", ["shakespeare_char", "rt_polarity"])
def test_hpo_train_runs_each_shared_data_experiment(experiment, tmp_path):
    if not SHARED_DATA.is_dir():
        pytest.skip("no ../shared/data beside the repository")
    out = tmp_path / experiment
    assert train("--config", f"experiments/{experiment}.yaml", *TINY, "--output", str(out)) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed"
    wanted = {"val_accuracy", "val_f1"} if experiment == "rt_polarity" else {"val_perplexity"}
    assert wanted <= set(result["final_metrics"])


def test_hpo_train_runs_gpt2_small_shape_shrunk_for_cpu(tmp_path):
    # the GPU experiment's code path (bf16 autocast) on CPU, with the model shrunk
    out = tmp_path / "gpt2"
    code = train(
        "--config",
        "experiments/gpt2_small.yaml",
        *TINY,
        "-o",
        "data.block_size=32",
        "-o",
        "data.vocab_size=512",
        "-o",
        "data.max_chars=100000",
        "-o",
        "train.torch_compile=false",
        "-o",
        "train.per_device_train_batch_size=4",
        "-o",
        "train.gradient_accumulation_steps=2",
        "--output",
        str(out),
    )
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed"
    assert torch.isfinite(torch.tensor(result["final_metrics"]["val_loss"]))


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
            "unknown value 'fp64'; choose one of auto, bf16, fp16, fp32 (train.precision)",
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
    assert result["status"] == "completed" and result["steps"] == 200
    steps = [
        json.loads(line)["step"] for line in metrics.read_text().splitlines() if '"train"' in line
    ]
    assert steps == sorted(set(steps)), "the resumed curve repeats or skips no step"


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
