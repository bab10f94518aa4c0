"""train.report_to: tensorboard — the trial's train and eval numbers as TensorBoard event files.

Written by rank 0 into output_dir/tensorboard with torch.utils.tensorboard (which needs the
`tensorboard` package; config validation refuses report_to: tensorboard without it). Scalars are
named "<record type>/<field>", e.g. train/loss, eval/val_loss. A resumed trial appends a new
event file; TensorBoard shows the steps of both.
"""

from __future__ import annotations

import math
from pathlib import Path


class TensorBoardLog:
    def __init__(self, folder: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def write(self, kind: str, step: int, **fields) -> None:
        for name, value in fields.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                if math.isfinite(value):
                    self.writer.add_scalar(f"{kind}/{name}", value, step)

    def close(self) -> None:
        self.writer.close()
