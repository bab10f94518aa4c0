"""The buffer between a tracker and its store: run operations in order, metrics in batches.

The driver's thread only appends to memory (microseconds per call); one background thread
sends. Operations on runs (create, params, tags, text artifacts, end) go out one at a time in
the order they were queued; metrics go out in batches of at most `batch_size` rows per run,
after `flush_interval` seconds or as soon as a full batch is waiting.

An outage (the tracking server is gone, SQLite is locked) never reaches the caller: the
failing request stays at the head of the buffer and is retried with a growing delay (up to
`max_retry_delay`) until it succeeds, so everything arrives once the store is back, in order.
A row leaves the buffer only after the request that carried it succeeded, so none is lost and
none is sent twice by the buffer; a request that committed but whose answer was lost is sent
again, which SQL stores absorb (a metric row is (key, value, timestamp, step), its timestamp
fixed when it was logged, and MLflow's SQL store ignores an exact duplicate; the legacy file
store, ./mlruns, would keep both). A run's creation is not such a row: the Sender looks for the
run before creating it again. An error the store will repeat forever (an invalid value, a
deleted run) drops that request with a warning.

Memory is bounded by `max_metrics` rows: beyond it new rows are dropped and counted. What is
still unsent when the buffer closes can be taken out (`pending()`) and put back in a later
buffer (`restore()`), e.g. saved to a file and sent when the study resumes.

Over 300 lines because SendBuffer is one class around one lock and one sending thread: the
queue of run operations, the metric batches, the retries and pending()/restore() share that state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

Row = tuple[str, float, int, int]  # metric key, value, timestamp (ms), step


@dataclass
class Op:
    """One operation on a run; `run` is the caller's key for it (the store's id comes later)."""

    kind: str  # create | params | tags | text | end: the Sender decides what each means
    run: str
    args: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # failed sends so far (a create retried after a lost answer may exist)


class Sender(Protocol):
    """What the buffer sends through: one store client, used from the buffer's thread only."""

    def send_op(self, op: Op, run_ids: MutableMapping[str, str]) -> None:
        """Carry out op; a create op adds run_ids[op.run]."""
        ...

    def send_metrics(self, run_id: str, rows: list[Row]) -> None: ...

    def is_permanent(self, error: Exception) -> bool:
        """Whether retrying `error` can never succeed (the request is then dropped)."""
        ...


@dataclass
class BufferStats:
    """Counters for tests, benchmarks and the end-of-study warning."""

    metrics_sent: int = 0
    metrics_dropped: int = 0
    ops_dropped: int = 0
    failures: int = 0
    send_cpu_seconds: float = 0.0  # CPU time of the sending thread


class SendBuffer:
    """Queues operations and metric rows and sends them from one background thread."""

    def __init__(
        self,
        sender: Sender,
        run_ids: MutableMapping[str, str] | None = None,
        *,
        batch_size: int = 1000,
        flush_interval: float = 2.0,
        max_metrics: int = 1_000_000,
        max_retry_delay: float = 30.0,
        on_sent: Callable[[Op], None] | None = None,
    ) -> None:
        self.sender = sender
        self.run_ids: MutableMapping[str, str] = run_ids if run_ids is not None else {}
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.max_metrics, self.max_retry_delay = max_metrics, max_retry_delay
        self.on_sent = on_sent
        self.stats = BufferStats()
        self._ops: deque[Op] = deque()
        self._metrics: dict[str, list[Row]] = {}
        self._n_metrics = 0
        self._cond = threading.Condition()
        self._hurry = False  # flush() or close() wants everything now, not at the next interval
        self._closing = False
        self._last_metrics_send = time.monotonic()
        self._outage_since: float | None = None
        self._warned_full = False
        self._thread = threading.Thread(target=self._work, name="hpo-tracking-sender", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the caller's side

    def put(self, op: Op) -> None:
        with self._cond:
            self._ops.append(op)
            self._cond.notify()

    def put_metrics(self, run: str, rows: Iterable[Row]) -> None:
        rows = list(rows)
        with self._cond:
            if self._n_metrics + len(rows) > self.max_metrics:
                self.stats.metrics_dropped += len(rows)
                if not self._warned_full:
                    self._warned_full = True
                    log.warning(
                        "tracking: %d metrics are waiting for the store; newer ones are "
                        "dropped until it answers",
                        self._n_metrics,
                    )
                return
            was_empty = not self._n_metrics
            self._metrics.setdefault(run, []).extend(rows)
            self._n_metrics += len(rows)
            if was_empty or self._n_metrics >= self.batch_size:  # start the clock, or send now
                self._cond.notify()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; False when `timeout` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            while self._ops or self._n_metrics:
                left = None if deadline is None else deadline - time.monotonic()
                if (left is not None and left <= 0) or not self._thread.is_alive():
                    break
                self._cond.wait(left)
            self._hurry = False
            return not (self._ops or self._n_metrics)

    def close(self, timeout: float | None = 60.0) -> bool:
        """Flush for up to `timeout` seconds, then stop the thread; False if anything is left."""
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=1.0)  # a request in flight may still hang in the client
        return done

    def pending(self) -> dict[str, Any]:
        """What is unsent, as plain data (JSON-ready) for restore()."""
        with self._cond:
            return {
                "ops": [{"kind": o.kind, "run": o.run, "args": o.args} for o in self._ops],
                "metrics": {
                    run: [list(r) for r in rows] for run, rows in self._metrics.items() if rows
                },
            }

    def restore(self, pending: dict[str, Any]) -> None:
        """Queue what pending() returned (before anything queued since)."""
        # attempts=1: an op of an earlier buffer may have reached the store without its answer
        ops = [Op(o["kind"], o["run"], o["args"], attempts=1) for o in pending.get("ops", [])]
        with self._cond:
            self._ops.extendleft(reversed(ops))
            for run, rows in pending.get("metrics", {}).items():
                self._metrics[run] = [tuple(r) for r in rows] + self._metrics.get(run, [])
                self._n_metrics += len(rows)
            self._cond.notify()

    @property
    def in_outage(self) -> bool:
        return self._outage_since is not None

    # ------------------------------------------------------------------ the sending thread

    def _work(self) -> None:
        delay = 0.0
        while True:
            with self._cond:
                work = self._next(delay)
                if work is None:
                    return
            started = time.thread_time()
            try:
                self._send(work)
            except Exception as error:  # noqa: BLE001 (any failure of the store is retried or dropped)
                self.stats.failures += 1
                if isinstance(error, _NoRun) or self.sender.is_permanent(error):
                    self._drop(work, error)
                    delay = 0.0
                else:
                    delay = min(max(2 * delay, 0.5), self.max_retry_delay)
                    self._note_outage(error, delay)
            else:
                delay = 0.0
                self._done(work)
            finally:
                self.stats.send_cpu_seconds += time.thread_time() - started

    def _next(self, delay: float) -> tuple[str, Any] | None:
        """Wait for something to send (after `delay` when retrying); None when closing."""
        start = time.monotonic()
        while delay and not self._closing:  # new rows do not cut it short; flush() does
            left = start + (min(delay, 0.5) if self._hurry else delay) - time.monotonic()
            if left <= 0:
                break
            self._cond.wait(left)
        while True:
            if self._closing:
                return None
            work = self._pick()
            if work is not None:
                return work
            waited = time.monotonic() - self._last_metrics_send
            self._cond.wait(max(self.flush_interval - waited, 0.05) if self._n_metrics else None)

    def _pick(self) -> tuple[str, Any] | None:
        if self._ops:
            op = self._ops[0]
            if op.kind == "end" and self._metrics.get(op.run):  # its metrics before its end
                return self._metric_batch(op.run)
            return "op", op
        due = (
            self._hurry
            or self._n_metrics >= self.batch_size
            or (
                self._n_metrics
                and time.monotonic() - self._last_metrics_send >= self.flush_interval
            )
        )
        if not due:
            return None
        for run, rows in self._metrics.items():
            if rows:
                return self._metric_batch(run)
        return None

    def _metric_batch(self, run: str) -> tuple[str, Any]:
        return "metrics", (run, self._metrics[run][: self.batch_size])

    def _send(self, work: tuple[str, Any]) -> None:
        kind, item = work
        if kind == "op":
            if item.kind != "create" and item.run not in self.run_ids:
                raise _NoRun(f"run {item.run} was never created")
            self.sender.send_op(item, self.run_ids)
            return
        run, rows = item
        run_id = self.run_ids.get(run)
        if run_id is None:  # its create op was dropped: these rows have no run to go to
            raise _NoRun(f"run {run} was never created")
        self.sender.send_metrics(run_id, rows)

    def _done(self, work: tuple[str, Any]) -> None:
        kind, item = work
        with self._cond:
            if kind == "op":
                self._ops.popleft()
            else:
                run, rows = item
                del self._metrics[run][: len(rows)]
                self._n_metrics -= len(rows)
                self.stats.metrics_sent += len(rows)
                self._last_metrics_send = time.monotonic()
            if self._outage_since is not None:
                log.warning(
                    "tracking: the store answers again after %.0f s; sending what waited",
                    time.monotonic() - self._outage_since,
                )
                self._outage_since = None
                self._warned_full = False
            self._cond.notify_all()
        if kind == "op" and self.on_sent is not None:
            try:
                self.on_sent(item)
            except Exception as error:  # noqa: BLE001 (the caller's hook must not stop sending)
                log.warning("tracking: after %s of run %s: %s", item.kind, item.run, error)

    def _drop(self, work: tuple[str, Any], error: Exception) -> None:
        kind, item = work
        with self._cond:
            if kind == "op":
                self._ops.popleft()
                self.stats.ops_dropped += 1
                what = f"{item.kind} of run {item.run}"
            else:
                run, rows = item
                del self._metrics[run][: len(rows)]
                self._n_metrics -= len(rows)
                self.stats.metrics_dropped += len(rows)
                what = f"{len(rows)} metrics of run {run}"
            self._cond.notify_all()
        log.warning("tracking: dropped %s: %s", what, _first_line(error))

    def _note_outage(self, error: Exception, delay: float) -> None:
        with self._cond:
            if self._ops:
                self._ops[0].attempts += 1
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                log.warning(
                    "tracking: the store does not answer (%s); training goes on, "
                    "%d metrics are kept and retried",
                    _first_line(error),
                    self._n_metrics,
                )
        log.debug("tracking: retry in %.1f s", delay)


class _NoRun(Exception):
    """Metrics of a run whose creation was dropped."""


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
