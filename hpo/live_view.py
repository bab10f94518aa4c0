"""The live view of a study on stderr: a Tracker that shows each trial as it runs.

On a terminal (rich's Live display, redrawn 4 times a second):

    trial   0 complete val_loss=4.1234      best 4.1234 (#0)  [1/8, ETA 2m10s]  learning_rate=...
      trial 1  ━━━━━━━━━━╺━━━━━━━━━  40/150  val_loss 4.31  loss 4.40
      trial 2  ━━━━╺━━━━━━━━━━━━━━━  12/150  loss 5.02
    study lr_wd  1/8 done  2 running  best val_loss 4.1234 (#0)  elapsed 0:00:31  ETA 0:02:10

The lines of finished trials stay above (the same lines as the plain log); below them, one
line per running trial (step/total, its latest metrics) and the study line. When stderr is not a
terminal (a pipe, a file, a CI log) the view writes plain lines instead, one per trial event
(started, complete, pruned, failed, interrupted), with no control characters: scripts and
tests read them. Everything from a user's files (params, reasons) goes through
hpo.terminal.printable either way.

Over 300 lines because LiveView is one Tracker: the terminal display and the plain lines show
the same trial events from the same state, two ways.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from hpo.methods import method_line, search_method
from hpo.records import END_STATES, FINISHED_STATES, StudySpec, TrialRecord
from hpo.space import SearchSpace
from hpo.study import StudyResult, best_trial
from hpo.terminal import printable, use_live_display

TotalSteps = Callable[[Mapping[str, Any]], "int | None"]


def format_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def format_clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class _Running:
    params: Mapping[str, Any]
    started: float
    total: int | None
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


class LiveView:
    """A Tracker that shows the study on stderr: live on a terminal, plain lines otherwise."""

    def __init__(
        self,
        space: SearchSpace,
        previous: Sequence[TrialRecord],
        total_steps: TotalSteps | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.space = space
        self.metric = space.objective.metric
        self.finished = sum(1 for r in previous if r.state in FINISHED_STATES)
        self.best = best_trial(previous, space.objectives)
        self.started = time.monotonic()
        self.finished_now = 0
        self.total_steps = total_steps
        self.stream = stream or sys.stderr
        self.name = ""
        self.running: dict[int, _Running] = {}
        self.lock = threading.Lock()  # the display's refresh thread reads what trials change
        self.live: Any = None  # rich.live.Live while a study runs on a terminal
        self._handlers: list[tuple[logging.StreamHandler, Any]] = []

    # -- Tracker ---------------------------------------------------------------------------

    def start_study(self, space: SearchSpace, study: StudySpec, driver: str) -> None:
        self.name = study.name
        budget = space.budget
        limits = [
            f"{budget.trials} trials" if budget.trials else "",
            f"{budget.timeout:g} s" if budget.timeout else "",
            f"{budget.max_steps_total} steps in all" if budget.max_steps_total else "",
        ]
        self._say(  # what searches it first: a study's result is read with its method
            f"study {study.name}: {method_line(driver, search_method(space, study))}, "
            f"{' / '.join(x for x in limits if x) or 'no budget'}, {study.parallel} at once "
            f"-> {study.dir}"
        )
        if use_live_display(self.stream):
            self._start_live()

    def start_trial(self, number: int, params: Any) -> None:
        total = None
        if self.total_steps is not None:
            try:
                total = self.total_steps(params)
            except Exception:  # noqa: BLE001 - a view never fails a trial; it shows no total
                total = None
        with self.lock:
            self.running[number] = _Running(dict(params), time.monotonic(), total)
        if self.live is None:
            self._say(f"trial {number:>3} started  {self._params(params)}")

    def log_metrics(self, number: int, step: int, metrics: Any) -> None:
        with self.lock:
            trial = self.running.get(number)
            if trial is not None:
                trial.step = max(trial.step, int(step))
                trial.metrics.update(
                    {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
                )

    def end_trial(self, record: TrialRecord) -> None:
        with self.lock:
            self.running.pop(record.number, None)
            if record.state in FINISHED_STATES:
                self.finished += 1
                self.finished_now += 1
            self.best = best_trial([r for r in (self.best, record) if r], self.space.objectives)
        value = "" if record.value is None else f"{self.metric}={record.value:.5g}"
        best = f"best {self.best.value:.5g} (#{self.best.number})" if self.best else "no best yet"
        why = f" ({record.reason[:100]})" if record.state == "failed" and record.reason else ""
        self._say(
            f"trial {record.number:>3} {record.state:<8} {value:<18} {best}  "
            f"[{self._progress()}]  {self._params(record.params)}{why}"
        )

    def end_study(self, result: StudyResult) -> None:
        self._stop_live()
        counts = ", ".join(
            f"{result.count(s)} {s}" for s in END_STATES if s != "interrupted" or result.count(s)
        )
        best = result.best
        found = f"best trial {best.number}: {best.value:.5g}" if best else "no complete trial"
        self._say(
            f"study {result.study} ended ({result.stop_reason}): {counts}; {found}; "
            f"{result.dir / 'summary.json'}"
        )

    def close(self) -> None:
        """Stop the live display (a study that ended by an exception never calls end_study)."""
        self._stop_live()

    # -- what is shown -----------------------------------------------------------------------

    def _params(self, params: Mapping[str, Any]) -> str:
        return " ".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in params.items())

    def _eta_seconds(self) -> float | None:
        """Seconds until the trial budget is spent, from the pace of this run (None: unknown)."""
        trials = self.space.budget.trials
        elapsed = time.monotonic() - self.started
        left_by_time = None
        if self.space.budget.timeout:
            left_by_time = max(0.0, self.space.budget.timeout - elapsed)
        if not trials:
            return left_by_time
        if self.finished_now:
            per_trial = elapsed / self.finished_now  # wall time per finished trial, K at a time
        else:  # none finished yet: the running trials' pace, if they know their total
            paces = [
                (time.monotonic() - t.started) * t.total / t.step
                for t in self.running.values()
                if t.total and t.step
            ]
            if not paces:
                return left_by_time
            per_trial = max(paces) / max(1, len(self.running))
        eta = max(0.0, per_trial * (trials - self.finished))
        return eta if left_by_time is None else min(eta, left_by_time)

    def _progress(self) -> str:
        trials = self.space.budget.trials
        done = f"{self.finished}/{trials}" if trials else f"{self.finished} done"
        if not trials or not self.finished_now:
            return done
        return f"{done}, ETA {format_eta(self._eta_seconds() or 0.0)}"

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self.lock:
            running = sorted(self.running.items())
            finished, best = self.finished, self.best
            eta = self._eta_seconds()
        rows = Table.grid(padding=(0, 1))
        for _ in range(4):
            rows.add_column(no_wrap=True)
        for number, trial in running:
            shown = [
                f"{k} {v:.4g}"
                for k, v in sorted(trial.metrics.items(), key=lambda kv: kv[0] != self.metric)
                if k == self.metric or k in ("loss", "val_loss")
            ]
            if trial.total:
                bar: Any = ProgressBar(total=trial.total, completed=trial.step, width=20)
                steps = f"{trial.step}/{trial.total}"
            else:
                bar, steps = Text(""), f"step {trial.step}"
            rows.add_row(
                Text(f"  trial {number}", style="bold"), bar, Text(steps), Text("  ".join(shown))
            )
        trials = self.space.budget.trials
        line = Text(f"study {self.name}  ", style="bold")
        line.append(f"{finished}/{trials} done" if trials else f"{finished} done")
        line.append(f"  {len(running)} running")
        if best is not None and best.value is not None:
            line.append(f"  best {self.metric} {best.value:.5g} (#{best.number})", style="green")
        line.append(f"  elapsed {format_clock(time.monotonic() - self.started)}")
        line.append(f"  ETA {format_clock(eta)}" if eta is not None else "  ETA -")
        return Group(rows, line)

    # -- the display -------------------------------------------------------------------------

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stream)
        self.live = Live(
            console=console,
            get_renderable=self._render,
            refresh_per_second=4,
            transient=True,  # the running lines go at the end; the finished ones stay above
            redirect_stdout=True,  # prints and warnings while it runs go above the display
            redirect_stderr=True,
        )
        self.live.start()
        self._route_log_handlers()

    def _stop_live(self) -> None:
        if self.live is None:
            return
        live, self.live = self.live, None
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers = []
        live.stop()

    def _route_log_handlers(self) -> None:
        """Send log handlers that write to the terminal through the display (above it).

        A handler keeps the stream it was made with (sys.stderr before the display started,
        MLflow's own handler too): writing there directly would tear the display apart.
        """
        terminal = {id(sys.__stderr__), id(sys.__stdout__), id(self.stream)}
        loggers = [logging.getLogger()] + [
            logger
            for logger in logging.Logger.manager.loggerDict.values()
            if isinstance(logger, logging.Logger)
        ]
        for logger in loggers:
            for handler in logger.handlers:
                if (
                    type(handler) is logging.StreamHandler
                    and id(getattr(handler, "stream", None)) in terminal
                ):
                    self._handlers.append((handler, handler.setStream(sys.stderr)))

    def _say(self, line: str) -> None:
        # param values and reasons come from the user's files: never let them drive the terminal
        text = printable(line, limit=None)
        if self.live is not None:
            from rich.text import Text

            self.live.refresh()  # the display below the line shows the state after it
            self.live.console.print(Text(text), soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)


def total_steps_of(objective: Any) -> TotalSteps | None:
    """What tells the view a trial's total steps: the runner objective knows them."""
    return getattr(objective, "total_steps", None)


@contextlib.contextmanager
def closing_views(views: Sequence[LiveView]) -> Iterator[None]:
    """Stops the live views however the study ends (a bug too): the terminal is left clean."""
    try:
        yield
    finally:
        for view in views:
            view.close()


def _short(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.3g}"
    return str(value)
