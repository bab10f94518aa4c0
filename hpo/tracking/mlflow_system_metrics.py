"""System metrics of running trials (CPU, memory, disk, network; GPU when present).

MLflow's own system-metrics logging (start_run(log_system_metrics=True), or a
SystemMetricsMonitor per run) starts one thread per run, each asking the store every interval
whether its run still runs and writing through its own client. Here one thread samples the
machine with MLflow's monitors (the same CPU, memory, disk, network and NVIDIA/AMD GPU
readings, GPU only with nvidia-ml-py or pyrocml installed) and hands each aggregate to every
running trial under MLflow's names (system/cpu_utilization_percentage, ...), through the
tracker's buffer: one writer, and the readings survive a tracking outage like any metric.
The readings are of the whole machine, so K trials at once share the same values.

MLflow's environment variables apply: MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL,
MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING and MLFLOW_SYSTEM_METRICS_NODE_ID.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, float], int], None]  # run key, metrics, step


class SystemMetricsSampler:
    """Samples every `interval` seconds while a run is registered; emits per run, step 0, 1, ..."""

    def __init__(
        self,
        emit: Emit,
        interval: float = 10.0,
        samples_before_logging: int = 1,
        tracking_uri: str | None = None,
    ) -> None:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        # Used for its monitors and settings only; its own thread is never started.
        self._mlflow = SystemMetricsMonitor(
            "",
            sampling_interval=interval,
            samples_before_logging=samples_before_logging,
            tracking_uri=tracking_uri,
        )
        self.interval = float(self._mlflow.sampling_interval)
        self.samples_before_logging = int(self._mlflow.samples_before_logging)
        node = self._mlflow.node_id
        self.prefix = "system/" + (f"{node}/" if node else "")
        self.emit = emit
        _say_when_gpu_readings_need_the_extra()
        self._steps: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, run: str) -> None:
        with self._lock:
            self._steps.setdefault(run, 0)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="hpo-system-metrics", daemon=True
                )
                self._thread.start()

    def remove(self, run: str) -> None:
        with self._lock:
            self._steps.pop(run, None)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        samples = 0
        while not self._stop.wait(self.interval):
            with self._lock:
                if not self._steps:
                    samples = 0
                    continue
            try:
                self._mlflow.collect_metrics()
                samples += 1
                if samples < self.samples_before_logging:
                    continue
                metrics = {
                    self.prefix + k: float(v) for k, v in self._mlflow.aggregate_metrics().items()
                }
                for monitor in self._mlflow.monitors:
                    monitor.clear_metrics()
                samples = 0
            except Exception as error:  # noqa: BLE001 (a failing reading must not end the study)
                log.warning("tracking: system metrics stopped: %s", error)
                return
            with self._lock:
                runs = list(self._steps.items())
                for run, step in runs:
                    self._steps[run] = step + 1
            for run, step in runs:
                self.emit(run, metrics, step)


def _say_when_gpu_readings_need_the_extra() -> None:
    """One line when this machine has an NVIDIA driver but MLflow cannot read it: its GPU monitor
    needs nvidia-ml-py (the gpu extra) and otherwise leaves the GPU out without a word."""
    import os

    from hpo.extras import extra_message, has_extra

    if os.path.exists("/proc/driver/nvidia/version") and not has_extra("gpu"):
        log.warning("tracking: %s", extra_message("gpu", "MLflow's GPU monitor"))
