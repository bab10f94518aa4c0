"""A console progress bar for one trial: step, loss, lr, tokens/s and ETA."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """A Reporter that draws progress on a terminal (one redrawn line) or logs lines otherwise."""

    def __init__(self, max_steps: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.max_steps = max_steps
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self.first_step: int | None = None

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        if "val_loss" in metrics:
            self._finish_line()
            shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            self.stream.write(f"eval  step {step}: {shown}\n")
        elif "loss" in metrics:
            self._draw(step, metrics)
        self.stream.flush()

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        self._finish_line()

    def _draw(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.first_step is None:  # a resumed run starts part-way: ETA from steps done here
            self.first_step, self.started = step, time.perf_counter()
        elapsed = time.perf_counter() - self.started
        done = step - self.first_step
        eta = elapsed / done * (self.max_steps - step) if done > 0 else 0.0
        filled = int(self.width * step / self.max_steps)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (
            f"[{bar}] step {step}/{self.max_steps}  loss {metrics['loss']:.4f}  "
            f"lr {metrics['lr']:.2e}  {metrics['tokens_per_sec']:,.0f} tok/s  ETA {format_duration(eta)}"
        )
        if self.tty:
            self.stream.write("\r" + line)
            self._open = True
        else:
            self.stream.write(line + "\n")

    def _finish_line(self) -> None:
        if self.tty and getattr(self, "_open", False):
            self.stream.write("\n")
            self._open = False
