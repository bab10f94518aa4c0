"""What a trial writes survives kill -9, a full disk and a resume: whole files, one clear reason,
and after a resume the same history as an uninterrupted run (not only the same weights)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner import run_trial
from runner.checkpoint import load_checkpoint
from runner.files import StorageError
from runner.jsonl import Appender, read_records
from runner.metrics_log import MetricsLog, read_metrics, reproducible
from runner.reporting import NullReporter

PAGE = 4096


def history(output_dir: Path, name: str = "metrics.jsonl") -> list[dict]:
    """A trial's records without the fields that measure the clock or the process."""
    return [reproducible(record) for record in read_records(output_dir / name)]


@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a folder on a real tmpfs of `size` bytes; unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(
                "a real disk-full test needs `mount -t tmpfs` (root, CAP_SYS_ADMIN): "
                + (done.stderr.strip() or f"mount exited {done.returncode}")
            )
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def resize(where: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


@pytest.mark.slow  # three training runs of the tiny LM: about 9 s
def test_resume_logs_the_same_history_as_an_uninterrupted_run(tiny_lm_config, stop_at, tmp_path):
    # checkpoints at 10 and 20 fall inside train-metric windows of 4 steps (8-12, 16-20...):
    # the window's loss and tokens must travel in the checkpoint, or step 12's loss differs
    overrides = ("model.dropout=0.1", "train.logging_steps=4", "monitor.layer_grad_norm_steps=5")
    run_trial(tiny_lm_config(f"output_dir={tmp_path / 'whole'}", *overrides))
    split = tiny_lm_config(f"output_dir={tmp_path / 'split'}", *overrides)
    first = run_trial(split, stop_at(10))
    assert first.status == "pruned" and first.resumed_from_step is None
    resumed = run_trial(split, resume=True)
    assert resumed.status == "complete" and resumed.resumed_from_step == 10
    assert json.loads((tmp_path / "split" / "result.json").read_text())["resumed_from_step"] == 10

    whole, again = history(tmp_path / "whole"), history(tmp_path / "split")
    assert [r["type"] for r in again].count("data") == 1, "a resume logs no second data record"
    assert [(r["type"], r["step"]) for r in again] == [(r["type"], r["step"]) for r in whole]
    assert again == whole, "loss, lr, grad norms, evals and events equal record for record"
    assert history(tmp_path / "split", "samples.jsonl") == history(
        tmp_path / "whole", "samples.jsonl"
    )


@pytest.mark.slow  # two training runs and a tmpfs mount: about 13 s
def test_a_full_disk_fails_the_trial_with_one_reason_and_keeps_the_last_checkpoint(
    tiny_lm_config, small_disk, tmp_path
):
    # checkpoints at steps 10 and 20 only (save_steps), then best and last at the end (30)
    overrides = ("model.n_embd=64", "train.save_steps=10", "eval.eval_steps=1000")
    run_trial(tiny_lm_config(f"output_dir={tmp_path / 'whole'}", *overrides))
    size = (tmp_path / "whole" / "checkpoints" / "last.pt").stat().st_size
    assert size > 300_000, "the disk below is sized for a checkpoint much larger than the logs"
    # room for one checkpoint and the logs, not for the second one's temporary file beside it
    disk = small_disk(-(-size // PAGE) * PAGE + size // 2)
    config = tiny_lm_config(f"output_dir={disk / 'trial'}", *overrides)

    result = run_trial(config)  # no exception: a full disk is the trial's outcome, not a crash
    last = disk / "trial" / "checkpoints" / "last.pt"
    assert result.status == "failed" and result.steps == 20
    assert result.reason == f"no space left on device while writing {last} at step 20"
    assert load_checkpoint(last)["trial"]["step"] == 10, "the previous last.pt still loads"
    assert not list(last.parent.glob(".*.tmp")), "the half-written temporary file is removed"
    saved = json.loads((disk / "trial" / "result.json").read_text())
    assert saved["status"] == "failed" and saved["reason"] == result.reason

    # with room again, --resume continues from step 10 and ends as if nothing had happened
    resize(disk, 8 * size)
    resumed = run_trial(config, resume=True)
    assert resumed.status == "complete" and resumed.resumed_from_step == 10
    assert history(disk / "trial") == history(tmp_path / "whole")


def test_a_result_json_that_cannot_be_written_fails_the_returned_result(tiny_lm_config, tmp_path):
    out = tmp_path / "trial"
    (out / "result.json").mkdir(parents=True)  # a real OSError: os.replace onto a folder
    result = run_trial(tiny_lm_config("train.max_steps=2", "eval.eval_steps=2"))
    assert result.status == "failed"
    assert (
        result.reason.startswith("is a directory while writing") and "result.json" in result.reason
    )
    assert result.last_checkpoint is not None and load_checkpoint(result.last_checkpoint)


def test_a_record_that_does_not_fit_is_not_left_half_written(small_disk):
    path = small_disk(2 * PAGE) / "metrics.jsonl"
    log = Appender(path)
    with pytest.raises(StorageError) as full:
        for step in range(10_000):
            log.append({"type": "train", "step": step, "text": "x" * 700})
    log.close()
    assert str(full.value) == f"no space left on device while writing {path}"
    data = path.read_bytes()
    assert data.endswith(b"\n") and len(data) > PAGE, "the records that fitted are kept"
    records = read_records(path)
    assert [r["step"] for r in records] == list(range(len(records)))
    assert len(data.splitlines()) == len(records), "no half record after the whole ones"


def test_an_unterminated_last_line_is_not_a_record(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"type": "train", "step": 1}\n{"type": "train", "st')
    assert read_metrics(path) == [{"type": "train", "step": 1}]
    MetricsLog(path, resume_step=5).close()  # a resume drops the cut-off line for good
    assert path.read_text() == '{"type": "train", "step": 1}\n'


REWRITER = """
import sys
from runner.metrics_log import MetricsLog
path, keep = sys.argv[1], int(sys.argv[2])
print("imported", flush=True)
while True:
    MetricsLog(__import__("pathlib").Path(path), resume_step=keep).close()
"""


@pytest.mark.slow
def test_a_resume_killed_while_it_cuts_the_log_back_leaves_the_old_or_the_new_file(tmp_path):
    # the bug: kill -9 during --resume's in-place rewrite left metrics.jsonl at 0 bytes
    path = tmp_path / "metrics.jsonl"
    lines = [
        json.dumps({"type": "train", "step": step, "loss": 1.0 / step, "pad": "x" * 200}) + "\n"
        for step in range(1, 60_001)
    ]
    original = "".join(lines) + '{"type": "train", "step": 60001, "lo'  # killed mid-record
    cut_back = "".join(lines[:40_000]).encode()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    rng = random.Random(0)
    outcomes = []
    for _ in range(4):
        path.write_text(original)
        writer = subprocess.Popen(
            [sys.executable, "-c", REWRITER, str(path), "40000"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout.readline() == "imported\n"
        time.sleep(0.1 + rng.random())  # somewhere inside one of its rewrites (~0.3 s each)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        data = path.read_bytes()
        assert data in (original.encode(), cut_back), f"{len(data)} bytes: neither old nor new"
        outcomes.append(data == cut_back)
    assert any(outcomes), "no rewrite ever completed: the test proved nothing"


def test_a_write_that_fails_before_the_first_step_fails_the_trial_untrained(
    tiny_lm_config, tmp_path
):
    out = tmp_path / "trial"
    (out / "samples.jsonl").mkdir(parents=True)  # a real OSError when the run resets the file
    result = run_trial(tiny_lm_config())
    assert result.status == "failed" and result.steps == 0
    assert result.reason == f"is a directory while writing {out / 'samples.jsonl'} at step 0"
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_raises_the_flag_and_the_second_stops_at_once(signum):
    from runner.loop import _InterruptFlag

    before = signal.getsignal(signum)
    with _InterruptFlag() as flag:
        os.kill(os.getpid(), signum)
        deadline = time.time() + 60
        while not flag.raised and time.time() < deadline:
            time.sleep(0.01)  # the handler runs in the main thread between bytecodes
        assert flag.raised and flag.name == ("SIGTERM" if signum == signal.SIGTERM else "Ctrl-C")
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
            time.sleep(60)
    assert signal.getsignal(signum) is before, "the previous handler is back"


@pytest.mark.slow  # a torchrun launch: 3 Python processes that import torch
def test_a_full_disk_under_two_ranks_stops_both_and_fails_the_trial(
    tiny_lm_config, small_disk, tmp_path
):
    # rank 0 alone writes: the other rank must learn of the failed write and stop with it, not
    # wait for rank 0 in the next step's collective forever
    from hpo.launch import run_distributed_trial

    overrides = ("model.n_embd=64", "train.save_steps=10", "eval.eval_steps=1000")
    one = run_trial(tiny_lm_config(f"output_dir={tmp_path / 'one'}", *overrides))
    size = Path(one.last_checkpoint).stat().st_size
    disk = small_disk(-(-size // PAGE) * PAGE + size // 2)
    config = tiny_lm_config(f"output_dir={disk / 'trial'}", "train.nproc=2", *overrides)
    result = run_distributed_trial(config, NullReporter())
    last = disk / "trial" / "checkpoints" / "last.pt"
    assert result.status == "failed", result.reason
    assert result.reason == f"no space left on device while writing {last} at step 20"
    assert load_checkpoint(last)["trial"]["step"] == 10


def test_a_data_cache_on_a_full_disk_is_skipped_with_a_warning(
    tiny_lm_config, small_disk, tmp_path, caplog
):
    cache = small_disk(16 * PAGE)  # the tokenized corpus (~130 kB) does not fit
    config = tiny_lm_config("train.max_steps=2", "eval.eval_steps=2", f"data.cache_dir={cache}")
    with caplog.at_level("WARNING", logger="runner"):
        result = run_trial(config)
    assert result.status == "complete", result.reason
    warned = [r.getMessage() for r in caplog.records if "data cache not written" in r.getMessage()]
    assert len(warned) == 1 and "no space left on device while writing" in warned[0], warned
    assert list(cache.iterdir()) == [], "no half entry is left in the cache"
