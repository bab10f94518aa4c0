"""The tracking buffer: ordered operations, batched metrics, outages retried without loss or repeat."""

from __future__ import annotations

import threading
import time

from hpo.tracking.buffer import Op, SendBuffer


class FakeStore:
    """A Sender that records what arrived; `down` makes every request fail like a lost server."""

    def __init__(self) -> None:
        self.down = False
        self.ops: list[tuple[str, str]] = []
        self.batches: list[tuple[str, list]] = []
        self.lock = threading.Lock()

    def send_op(self, op, run_ids):
        self._check()
        if op.kind == "create":
            run_ids[op.run] = f"id-{op.run}"
        if op.kind == "bad":
            raise PermanentError("invalid value")
        self.ops.append((op.kind, op.run))

    def send_metrics(self, run_id, rows):
        self._check()
        with self.lock:
            self.batches.append((run_id, list(rows)))

    def is_permanent(self, error):
        return isinstance(error, PermanentError)

    def _check(self):
        if self.down:
            raise ConnectionError("connection refused")

    def rows(self, run_id):
        return [r for rid, rows in self.batches if rid == run_id for r in rows]


class PermanentError(Exception):
    pass


def rows(n, start=0, key="loss"):
    return [(key, float(step), 1000 + step, step) for step in range(start, start + n)]


def test_metrics_go_in_batches_of_at_most_batch_size_in_order():
    store = FakeStore()
    buffer = SendBuffer(store, {"s": "id-s"}, batch_size=1000, flush_interval=60)
    buffer.put_metrics("s", rows(2500))
    assert buffer.flush(10)
    assert [len(b) for _, b in store.batches] == [1000, 1000, 500]
    assert store.rows("id-s") == rows(2500)
    buffer.close()


def test_metrics_wait_for_their_run_and_go_before_its_end():
    store = FakeStore()
    buffer = SendBuffer(store, batch_size=1000, flush_interval=60)
    buffer.put(Op("create", "0"))
    buffer.put_metrics("0", rows(3))
    buffer.put(Op("end", "0"))
    assert buffer.flush(10)
    assert store.ops == [("create", "0"), ("end", "0")]
    assert store.rows("id-0") == rows(3)
    buffer.close()


def test_small_batches_go_after_the_flush_interval_without_a_flush():
    store = FakeStore()
    buffer = SendBuffer(store, {"s": "id-s"}, flush_interval=0.2)
    buffer.put_metrics("s", rows(5))
    deadline = time.monotonic() + 10
    while not store.batches and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.rows("id-s") == rows(5)
    buffer.close()


def test_an_outage_keeps_every_row_and_sends_each_once_when_the_store_is_back():
    store = FakeStore()
    buffer = SendBuffer(
        store, {"s": "id-s"}, batch_size=100, flush_interval=0.05, max_retry_delay=0.2
    )
    buffer.put_metrics("s", rows(150))
    assert buffer.flush(10)
    store.down = True
    buffer.put_metrics("s", rows(250, start=150))
    buffer.put(Op("create", "1"))
    buffer.put_metrics("1", rows(10))
    assert not buffer.flush(0.5)
    assert buffer.in_outage and buffer.stats.failures > 0
    store.down = False
    assert buffer.flush(10)
    assert store.rows("id-s") == rows(400)  # all of them, in order, none twice
    assert store.rows("id-1") == rows(10)
    assert not buffer.in_outage
    buffer.close()


def test_a_request_the_store_rejects_for_good_is_dropped_and_the_rest_goes_on():
    store = FakeStore()
    buffer = SendBuffer(store, {"s": "id-s"})
    buffer.put(Op("bad", "s"))
    buffer.put(Op("tags", "s"))
    buffer.put(Op("tags", "never-created"))
    assert buffer.flush(10)
    assert store.ops == [("tags", "s")]
    assert buffer.stats.ops_dropped == 2
    buffer.close()


def test_memory_is_bounded_new_rows_beyond_the_limit_are_dropped_and_counted():
    store = FakeStore()
    store.down = True
    buffer = SendBuffer(store, {"s": "id-s"}, max_metrics=100, max_retry_delay=0.1)
    buffer.put_metrics("s", rows(80))
    buffer.put_metrics("s", rows(30, start=80))
    assert buffer.stats.metrics_dropped == 30
    store.down = False
    assert buffer.flush(10)
    assert store.rows("id-s") == rows(80)
    buffer.close()


def test_what_a_closed_buffer_could_not_send_is_restored_into_the_next_one():
    store = FakeStore()
    store.down = True
    first = SendBuffer(store, {"s": "id-s"}, max_retry_delay=0.1)
    first.put(Op("create", "0", {"name": "trial 0"}))
    first.put_metrics("0", rows(5))
    first.put_metrics("s", rows(3))
    assert not first.close(timeout=0.3)
    pending = first.pending()
    assert [o["kind"] for o in pending["ops"]] == ["create"]

    store.down = False
    second = SendBuffer(store, {"s": "id-s"})
    second.put_metrics("s", rows(2, start=3))
    second.restore(pending)
    assert second.flush(10)
    assert store.rows("id-s") == rows(5)  # the earlier rows first
    assert store.rows("id-0") == rows(5)
    second.close()
