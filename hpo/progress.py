"""The progress of one `hpo train` trial: step, loss, lr, tokens/s and ETA.

On a terminal, a rich progress bar redrawn in place (rich clears what a shorter line leaves
behind); evaluations print as lines above it. Elsewhere (a pipe, a log file) one plain line per
logging interval and per evaluation, with no control characters.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from hpo.terminal import use_live_display


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """A Reporter that draws progress on a terminal (rich) or logs lines otherwise."""

    def __init__(self, max_steps: int, stream: TextIO | None = None) -> None:
        self.max_steps = max_steps
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.first_step: int | None = None
        self.bar: Any = None  # rich.progress.Progress on a terminal, once the first step reports
        self.task: Any = None

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        if "val_loss" in metrics:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            self._line(f"eval  step {step}: {shown}")
        elif "loss" in metrics:
            self._draw(step, metrics)

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _draw(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.first_step is None:  # a resumed run starts part-way: ETA from steps done here
            self.first_step, self.started = step, time.perf_counter()
        stats = (
            f"loss {metrics['loss']:.4f}  lr {metrics['lr']:.2e}  "
            f"{metrics['tokens_per_sec']:,.0f} tok/s"
        )
        if use_live_display(self.stream):
            self._draw_bar(step, stats)
            return
        elapsed = time.perf_counter() - self.started
        done = step - self.first_step
        eta = elapsed / done * (self.max_steps - step) if done > 0 else 0.0
        self._line(f"step {step}/{self.max_steps}  {stats}  ETA {format_duration(eta)}")

    def _draw_bar(self, step: int, stats: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        if self.bar is None:
            self.bar = Progress(
                BarColumn(bar_width=24),
                TextColumn("step"),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self.bar.start()
            # the bar's ETA counts from the first step this run trains (a resumed run too)
            # started at this run's first step: a resumed run's ETA counts only steps done here
            self.task = self.bar.add_task(
                "train", total=self.max_steps, completed=step, stats=stats
            )
            return
        self.bar.update(self.task, completed=step, stats=stats)

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()
