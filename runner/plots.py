"""PNG curves of a trial's learning rate and gradient norm, drawn from its metrics.jsonl.

Written into the trial folder at the end of a trial (lr.png, grad_norm.png), beside the numbers
they show, so a run can be looked at without a notebook. matplotlib is imported here only.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from runner.files import atomic_write
from runner.jsonl import read_records

log_to_console = logging.getLogger("runner")
PLOTTED = {"lr": "learning rate", "grad_norm": "gradient norm (before clipping)"}


def write_train_plots(out: str | Path) -> list[Path]:
    """Draw each PLOTTED train metric against the step; returns the files written.

    Nothing is drawn without train records, or (one warning) without matplotlib.
    """
    out = Path(out)
    if not (out / "metrics.jsonl").is_file():
        return []
    records = [r for r in read_records(out / "metrics.jsonl") if r.get("type") == "train"]
    if not records:
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display is needed
        import matplotlib.pyplot as plt
    except ImportError:
        log_to_console.warning("lr/grad_norm plots skipped: matplotlib is not installed")
        return []
    written = []
    for key, label in PLOTTED.items():
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
        if not points:
            continue
        figure, axes = plt.subplots(figsize=(6, 3.5))
        try:
            axes.plot(*zip(*points, strict=True))
            axes.set_xlabel("step")
            axes.set_ylabel(label)
            if key == "grad_norm" and all(v > 0 for _, v in points):
                axes.set_yscale("log")  # spikes and vanishing both stay visible
            figure.tight_layout()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100)
        finally:
            plt.close(figure)
        path = out / f"{key}.png"
        png = buffer.getvalue()
        atomic_write(path, lambda handle, png=png: handle.write(png))
        written.append(path)
    return written
