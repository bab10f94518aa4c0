"""Command trials: each trial runs the user's own command line (`hpo search --command`).

CommandObjective is an objective like any other (params, reporter) -> {metric: value}, so every
driver, --parallel and --resume run it as they run the runner. Per trial it:

- fills the command's {placeholders} with shell-quoted values (hpo.command_template) and runs
  it with /bin/sh -c in the trial's folder (runs/<study>/trials/<n>/), in a session and process
  group of its own, stdin closed, stdout and stderr appended to the trial's output.log. The
  environment adds HPO_TRIAL_PARAMS (the params as JSON), HPO_TRIAL_DIR, HPO_TRIAL_NUMBER,
  HPO_STUDY, the report channel (HPO_REPORT_FILE, HPO_PRUNE_FILE, HPO_ANSWER_FILE and the
  doorbell HPO_WAKE_FILE: hpo.command_client),
  PYTHONUNBUFFERED=1 (so printed `hpo:` lines arrive as they are printed) and, when --resume
  runs the trial again, HPO_RESUME=1. The command line run is written to command.json.
- reads the reports as they come (reports.jsonl, and `hpo: {...}` lines of output.log) and
  hands each to the driver: the tracker logs it, the pruner decides on it; then it answers
  (the answer file: how far reports.jsonl is decided on), which should_prune() waits for.
- pruned: creates the prune file, sends SIGTERM to the process group (at once, 0.5 s later; a
  script that checks hpo.should_prune() first gets kill_after seconds to stop itself), then
  SIGKILL kill_after seconds later. The trial is pruned whatever the command's exit code.
- Ctrl-C or SIGTERM of the search: one SIGINT to the process group (a Python script gets
  KeyboardInterrupt: save a checkpoint there), SIGKILL kill_after seconds later; the trial ends
  `interrupted` and --resume runs the command again in the same folder with HPO_RESUME=1 (its
  earlier reports still count). A kill -9 of the search: the command is killed with it (Linux
  PR_SET_PDEATHSIG on the process the search started).
- exit code 0: the trial's value is the best value of the objective metric over its reports
  (as a runner trial's is its best evaluation), with the other metrics of that report; a
  command that reported no value of the metric fails. Any other exit code fails the trial,
  the last lines of its output being the reason.
- best checkpoint: what the script writes to HPO_TRIAL_DIR/checkpoints/best (a folder), or a
  path it names with hpo.report_checkpoint, copied there when the trial ends complete; the
  study's best trial's is promoted to the study's best/ (hpo.study_best.promote_best).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.command_client import ANSWER_FILE_ENV, PRUNE_FILE_ENV, REPORT_FILE_ENV, WAKE_FILE_ENV
from hpo.command_template import render
from hpo.command_watch import PRINTED_REPORT, Doorbell, Tail, TrialState, Watch
from hpo.drivers.base import TrialInterrupted, TrialPruned
from hpo.space import Command, Objective
from runner.files import atomic_write_json

REPORTS = "reports.jsonl"  # in the trial's folder: the channel hpo.report appends to
PRUNE_MARK = "pruned"  # in the trial's folder: created when the pruner stops the trial
ANSWERS = "answered"  # in the trial's folder: bytes of reports.jsonl decided on (should_prune)
REASON_LINES = 5  # lines of output a failed trial's reason quotes
log = logging.getLogger(__name__)

# Run first in the new session: SIGKILL this process when the search's process dies (Linux),
# then become /bin/sh (exec keeps the pid, the session and the death signal).
_LAUNCH = """import os, sys
if sys.platform.startswith("linux"):
    import ctypes, signal
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    if os.getppid() != int(sys.argv[1]):
        os._exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


class CommandFailed(RuntimeError):
    """The command exited with an error, or reported no value of the objective."""


class CommandObjective:
    """Runs one trial of the command per call; see the module doc. Picklable (--parallel)."""

    def __init__(
        self, command: Command, objectives: Sequence[Objective], max_steps: int | None = None
    ) -> None:
        self.command = command
        self.objectives = tuple(objectives)
        self.max_steps = max_steps
        self.cwd = os.getcwd()  # {cwd}: here, not where a worker (or Ray) runs the trial

    def __call__(self, params: Mapping[str, Any], reporter: Any) -> dict[str, float]:
        directory = Path(reporter.dir).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        reports, prune_mark = directory / REPORTS, directory / PRUNE_MARK
        answers = directory / ANSWERS
        resumed = reports.exists() or reporter.resume_checkpoint is not None
        prune_mark.unlink(missing_ok=True)
        answers.unlink(missing_ok=True)
        state = TrialState(self.objectives)
        if resumed:  # an earlier attempt's reports count toward the value, not sent again
            for line in Tail(reports).lines():
                state.replay(line)
        reports.touch()
        output = directory / "output.log"
        study = directory.parent.parent.name  # runs/<study>/trials/<n>
        values = {
            **params,
            "trial_dir": str(directory),
            "trial_number": reporter.number,
            "study": study,
            "max_steps": self.max_steps,
            "cwd": self.cwd,
            "python": sys.executable,
        }
        line = render(self.command.template, values)
        atomic_write_json(directory / "command.json", {"command": line, "resumed": resumed})
        env = {
            **os.environ,
            "HPO_TRIAL_PARAMS": json.dumps(dict(params)),
            "HPO_TRIAL_DIR": str(directory),
            "HPO_TRIAL_NUMBER": str(reporter.number),
            "HPO_STUDY": study,
            REPORT_FILE_ENV: str(reports),
            PRUNE_FILE_ENV: str(prune_mark),
            ANSWER_FILE_ENV: str(answers),
        }
        doorbell = Doorbell()
        if doorbell.path is not None:
            env[WAKE_FILE_ENV] = doorbell.path
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.pop("HPO_RESUME", None)
        if resumed:
            env["HPO_RESUME"] = "1"
        if self.max_steps is not None:
            env["HPO_MAX_STEPS"] = str(self.max_steps)
        with output.open("ab") as out:
            started_at = out.tell()
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    _LAUNCH,
                    str(os.getpid()),
                    "/bin/sh",
                    "-c",
                    line,
                ],
                cwd=directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        watch = Watch(process, self.command.kill_after, prune_mark, doorbell)
        try:
            ending = watch.run(
                reporter,
                state,
                Tail(reports, start=reports.stat().st_size, answers=answers),
                Tail(output, start=started_at, only=PRINTED_REPORT),
            )
        finally:
            watch.kill()
            doorbell.close()
        if ending == "interrupted":
            raise TrialInterrupted(f"interrupted at step {state.steps}")
        if ending == "pruned":
            raise TrialPruned(watch.decision.reason)
        if process.returncode != 0:
            raise CommandFailed(
                f"{_exit_text(process.returncode)}: {_last_lines(output, started_at)}"
            )
        result = state.result()
        if result is None:
            metric = self.objectives[0].metric
            raise CommandFailed(
                f"the command exited 0 but reported no {metric!r} (hpo.report(step, "
                f'{{"{metric}": value}}) or a printed line hpo: {{"step": N, "{metric}": value}})'
            )
        if state.checkpoint is not None:
            _keep_checkpoint(Path(state.checkpoint), directory / "checkpoints" / "best")
        return result


def _exit_text(code: int) -> str:
    if code < 0:
        return f"the command was killed by {signal.Signals(-code).name}"
    if code > 128 and code - 128 in signal.Signals._value2member_map_:
        return f"the command exited with code {code} ({signal.Signals(code - 128).name}?)"
    return f"the command exited with code {code}"


def _last_lines(output: Path, start: int) -> str:
    """The last lines the command wrote (this attempt's), joined by ' | '."""
    try:
        with output.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(start, size - 4096))
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return "(its output.log cannot be read)"
    lines = [line.strip()[:300] for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-REASON_LINES:]) or "(no output)"


def _keep_checkpoint(source: Path, target: Path) -> None:
    """Copy the checkpoint the script named (a file or a folder) to the trial's checkpoints/best."""
    if not source.exists():
        log.warning("hpo: the checkpoint the trial reported, %s, no longer exists", source)
        return
    if source.resolve() == target.resolve():
        return
    staging = target.with_name(f".best.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, staging, dirs_exist_ok=True)
    else:
        shutil.copy2(source, staging / source.name)
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    os.rename(staging, target)
