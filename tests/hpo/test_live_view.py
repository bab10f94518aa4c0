"""What `hpo search` and `hpo train` show while they run: live on a real pseudo-terminal,
plain lines in a pipe, and nothing from other libraries with --quiet."""

import io
import logging
import os
import pty
import re
import select
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DEADLINE = 240

OBJECTIVES = '''
import io
import logging
import time
import warnings
import warnings


def steady(params, reporter):
    for step in range(1, 7):
        time.sleep(0.2)  # the display redraws 4 times a second: it shows each trial running
        reporter.report(step, {"loss": 1.0 / step, "y": params["x"] + 1.0 / step})
    return {"y": params["x"]}


steady.total_steps = lambda params: 6  # what the live view shows as step/total


def noisy(params, reporter):
    """Talks like MLflow and ONNX do: a warning and a logger's WARNING record."""
    warnings.warn("a third-party UserWarning from the objective")
    logging.getLogger("mlflow.fake").warning("WARNING mlflow.fake: a third-party record")
    logging.getLogger("onnxscript").warning("WARNING onnxscript: a third-party record")
    reporter.report(1, {"y": params["x"]})
    return {"y": params["x"]}
'''
SPACE = """
objective: {metric: y, direction: minimize}
budget: {trials: 2}
driver: {seed: 0}
params:
  x: {type: float, low: 0.0, high: 1.0}
"""


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    (tmp_path / "space.yaml").write_text(SPACE)
    return tmp_path


def search_args(objective: str, *extra: str) -> list[str]:
    return [
        *("search", "--space", "space.yaml", "--objective", f"objectives.py:{objective}"),
        *("--runs", "runs", "--study", "s", *extra),
    ]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPO_QUIET", "PYTHONWARN"))}
    return {**env, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": "160"}


def run_in_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run `python -m hpo ARGS` with a pseudo-terminal as its stdin, stdout and stderr."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once (no pytest machinery runs here)
        try:
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-m", "hpo", *args], environment())
        finally:
            os._exit(127)
    output, deadline = b"", time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def screen(raw: str) -> list[str]:
    """What a terminal shows after `raw`: a small emulator of what rich sends (\\r, \\n,
    cursor up, erase line; colours and cursor visibility ignored). Characters a redraw
    did not overwrite stay, as on a real terminal: stale characters would show here."""
    lines, row, col = [""], 0, 0
    position = 0
    while position < len(raw):
        match = CSI.match(raw, position)
        if match:
            argument, command = match.groups()
            if command == "A":
                row = max(0, row - int(argument or 1))
            elif command == "K" and argument == "2":
                lines[row] = ""
            elif command == "G":
                col = int(argument or 1) - 1
            position = match.end()
            continue
        char = raw[position]
        position += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
            col = 0
            if row == len(lines):
                lines.append("")
        elif char >= " ":
            line = lines[row].ljust(col)
            lines[row] = line[:col] + char + line[col + 1 :]
            col += 1
    return [line.rstrip() for line in lines if line.strip()]


@pytest.mark.slow
def test_search_on_a_terminal_shows_running_trials_the_best_and_an_eta(workdir):
    code, raw = run_in_terminal(search_args("steady", "--no-track"), workdir)
    assert code == 0, raw[-3000:]
    plain = CSI.sub("", raw)
    # while trial 1 ran: its line with step/total and latest metrics, and the study line
    assert re.search(r"trial 1 +\S* +\d/6 +y [\d.]+ +loss [\d.]+", plain), plain[-3000:]
    assert re.search(r"study s +1/2 done +1 running +best y [\d.]+ \(#0\) +elapsed", plain)
    assert re.search(r"ETA 0:00:\d\d", plain), "the study line gives an ETA"
    shown = screen(raw)
    # at the end the running lines are gone and the finished ones stay, each drawn cleanly
    assert [line for line in shown if line.startswith("trial ")] == [
        line
        for line in shown
        if re.fullmatch(r"trial +\d complete y=[\d.]+ +best .*x=[\d.]+", line)
    ]
    assert len([line for line in shown if line.startswith("trial ")]) == 2, shown
    live_lines = [line for line in shown if re.match(r"  trial|study s +\d+/2 done", line)]
    assert not live_lines, shown
    assert any(line.startswith("study s ended (budget): 2 complete") for line in shown), shown


@pytest.mark.slow
def test_search_in_a_pipe_writes_one_plain_line_per_trial_event(workdir):
    done = subprocess.run(
        [sys.executable, "-m", "hpo", *search_args("steady", "--no-track")],
        cwd=workdir,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr, "control characters in a pipe"
    events = [line for line in done.stderr.splitlines() if line.startswith("trial ")]
    assert [line.split()[:3] for line in events] == [
        ["trial", "0", "started"],
        ["trial", "0", "complete"],
        ["trial", "1", "started"],
        ["trial", "1", "complete"],
    ], done.stderr
    assert "[2/2, ETA" in events[-1] and "best " in events[-1]


def run_noisy(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hpo", *search_args("noisy", "--no-track", *extra)],
        cwd=workdir,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def test_without_quiet_a_third_party_warning_is_one_plain_line(workdir):
    done = run_noisy(workdir)
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if "third-party UserWarning" in line]
    assert len(warned) == 1, done.stderr  # once per place, as Python does; on one line
    assert warned[0].startswith("warning: UserWarning: a third-party UserWarning")


@pytest.mark.parametrize("parallel", ["1", "2"])
@pytest.mark.slow
def test_quiet_silences_third_party_warnings_and_loggers_in_trial_processes_too(workdir, parallel):
    done = run_noisy(workdir, "--quiet", "--parallel", parallel)
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert "best trial" in done.stdout, "hpo's own result still prints"
    for noise in ("Warning", "WARNING", "third-party"):
        assert noise not in said, said
    if parallel == "2":  # trials ran in worker processes, writing to their output.log
        logs = sorted((workdir / "runs" / "s" / "trials").glob("*/output.log"))
        assert len(logs) == 2
        for log in logs:
            assert "third-party" not in log.read_text(), log.read_text()


@pytest.mark.slow
def test_quiet_search_with_tracking_prints_no_third_party_warning(tmp_path):
    """The runner on the default experiment with MLflow (a model logged and registered):
    MLflow's, ONNX's and CloudPickle's warnings and progress bars used to print here."""
    args = [
        sys.executable,
        "-m",
        "hpo",
        "search",
        "--space",
        str(ROOT / "experiments/spaces/lr_wd.yaml"),
    ]
    args += ["--runs", "runs", "--study", "s", "--trials", "1", "--max-steps", "4", "--quiet"]
    args += ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    args += ["-o", "model.n_layer=1", "-o", "model.n_embd=32", "-o", "model.n_head=2"]
    args += ["-o", "data.max_chars=200000", "-o", "eval.max_eval_batches=2"]
    done = subprocess.run(
        args, cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "registered model" in done.stdout, "tracking ran and logged the model"
    said = done.stdout + done.stderr
    for noise in ("Warning", "WARNING", "INFO", "Downloading artifacts", "Writing model shards"):
        assert noise not in said, said


def test_main_called_from_python_gives_back_its_environment_loggers_and_warnings(
    workdir, monkeypatch
):
    from hpo.cli import main

    monkeypatch.chdir(workdir)
    monkeypatch.delenv("HPO_QUIET", raising=False)
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    mlflow_level = logging.getLogger("mlflow").level
    filters, show = list(warnings.filters), warnings.showwarning
    assert main(search_args("noisy", "--no-track", "--quiet")) == 0
    assert "HPO_QUIET" not in os.environ and "PYTHONWARNINGS" not in os.environ
    assert logging.getLogger("mlflow").level == mlflow_level
    assert warnings.filters == filters and warnings.showwarning is show


class TerminalStream(io.StringIO):
    """What a terminal's stream looks like to rich: a tty (rich then redraws in place)."""

    def isatty(self) -> bool:
        return True


def test_the_train_bar_leaves_no_stale_characters_when_its_line_gets_shorter(monkeypatch):
    from hpo.progress import ProgressBar

    monkeypatch.setenv("TERM", "xterm-256color")
    stream = TerminalStream()
    bar = ProgressBar(10, stream=stream)
    bar.report(1, {"loss": 123456.789, "lr": 1e-3, "tokens_per_sec": 123_456_789.0})
    bar.report(2, {"loss": 1.5, "lr": 1e-3, "tokens_per_sec": 9.0})  # a much shorter line
    bar.report(2, {"val_loss": 1.25})
    bar.close()
    shown = screen(stream.getvalue())
    assert shown[0] == "eval  step 2: val_loss 1.25", shown
    assert re.fullmatch(r"\S+ step +2/10 loss 1\.5000  lr 1\.00e-03  9 tok/s ETA [-\d:]+", shown[1])
    assert len(shown) == 2, shown
