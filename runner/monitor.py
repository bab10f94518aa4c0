"""Anomaly events: exploding or vanishing gradients and loss spikes against a moving average."""

from __future__ import annotations

import math
from collections import Counter

from runner.config import MonitorConfig


class AnomalyMonitor:
    """Watches each step's loss and pre-clip gradient norm and names what looks wrong."""

    def __init__(self, cfg: MonitorConfig) -> None:
        self.cfg = cfg
        self.loss_ema: float | None = None
        self.counts: Counter[str] = Counter()

    def observe(self, loss: float, grad_norm: float) -> list[dict[str, float | str]]:
        """Events for this step (possibly none); the moving average skips non-finite losses."""
        events: list[dict[str, float | str]] = []
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            events.append({"event": "nonfinite", "loss": loss, "grad_norm": grad_norm})
        else:
            if grad_norm > self.cfg.grad_norm_explode:
                events.append({"event": "grad_explode", "grad_norm": grad_norm})
            elif grad_norm < self.cfg.grad_norm_vanish:
                events.append({"event": "grad_vanish", "grad_norm": grad_norm})
            if self.loss_ema is not None and loss > self.cfg.loss_spike_factor * self.loss_ema:
                events.append({"event": "loss_spike", "loss": loss, "loss_ema": self.loss_ema})
            beta = self.cfg.loss_ema_beta
            self.loss_ema = (
                loss if self.loss_ema is None else beta * self.loss_ema + (1 - beta) * loss
            )
        for event in events:
            self.counts[str(event["event"])] += 1
        return events

    def state_dict(self) -> dict:
        return {"loss_ema": self.loss_ema, "counts": dict(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        self.loss_ema = state["loss_ema"]
        self.counts = Counter(state["counts"])


def warn_without_nvml(device) -> bool:
    """One warning when a trial runs on CUDA and nvidia-ml-py (pynvml) is missing: GPU
    utilisation and memory (MLflow's system metrics) need it. True when it warned."""
    import importlib.util
    import logging

    if getattr(device, "type", None) != "cuda" or importlib.util.find_spec("pynvml"):
        return False
    logging.getLogger("runner").warning(
        "GPU utilisation is not recorded: install nvidia-ml-py (pip install 'hpo[gpu]')"
    )
    return True
