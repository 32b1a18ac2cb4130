"""The hot path's counts, kept per thread and written to prometheus-client once a second.

Straight into prometheus-client's multi-process files, a request's updates (its counter,
its histogram, the in-flight gauge, its cache read) cost 8.7 us: each takes a lock and
writes a memory-mapped file. That was 10% of a cached read's throughput (bench/
metrics_cost.py; docs/decisions.md, "Metrics"). Here a request adds to plain dicts that only
its own thread writes, and a thread of each worker process adds them up and sets the
library's values every FLUSH_SECONDS; a scrape answered by a worker flushes that worker
first. So a scrape sees the other workers' counts as of their last flush, at most
FLUSH_SECONDS old, and a worker killed outright loses at most that much counting.

The metrics are still prometheus-client's (definitions, files, exposition); only when their
values are written changes. Setting them uses the library's value objects (`_value`,
`_buckets`, `_sum`), pinned with the library in the locks and covered by the exact-count
tests (tests/test_metrics*.py).
"""

from __future__ import annotations

import bisect
import os
import threading
import time

from . import metrics

FLUSH_SECONDS = 1.0
_SUM = len(metrics.BUCKETS) + 1  # a duration row: a count per bucket (+Inf last), then the sum


class _Table:
    """One thread's counts since its process started (only that thread writes them)."""

    __slots__ = ("busy", "cache", "durations", "requests")

    def __init__(self) -> None:
        self.busy = 0  # a thread answers one request at a time: in flight here, 0 or 1
        self.requests: dict[tuple[str, str, str], int] = {}
        self.durations: dict[tuple[str, str], list[float]] = {}
        self.cache: dict[tuple[str, str], int] = {}


class Buffer:
    """Per-thread tables of one process, and the flusher that sums them into the metrics."""

    def __init__(self) -> None:
        self._fresh()
        # A forked child has neither the flusher thread nor anything to count yet.
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self) -> None:
        self._lock = threading.Lock()  # a fork may copy it held by a thread that is gone
        self._local = threading.local()
        self._tables: list[_Table] = []
        self._flushing = False

    def table(self) -> _Table:
        """This thread's table (made, and the flusher started, on a thread's first use)."""
        table: _Table | None = getattr(self._local, "table", None)
        if table is None:
            table = self._local.table = _Table()
            with self._lock:
                if not self._flushing:  # the first table of this process
                    self._flushing = True
                    threading.Thread(
                        target=self._flush_forever, name="metrics", daemon=True
                    ).start()
                self._tables.append(table)
        return table

    def request(self, route: str, method: str, status: str, seconds: float) -> None:
        """Count a finished request and its duration."""
        table = self._local.table  # started() made it
        table.busy = 0
        key = (route, method, status)
        table.requests[key] = table.requests.get(key, 0) + 1
        row = table.durations.get((route, method))
        if row is None:
            row = table.durations[(route, method)] = [0.0] * (_SUM + 1)
        row[bisect.bisect_left(metrics.BUCKETS, seconds)] += 1  # le: the first bound >= it
        row[_SUM] += seconds

    def started(self) -> None:
        """A request is being answered on this thread."""
        self.table().busy = 1

    def cache_read(self, kind: str, result: str) -> None:
        """Count an app cache read (cache.py)."""
        cache = self.table().cache
        cache[(kind, result)] = cache.get((kind, result), 0) + 1

    def flush(self) -> None:
        """Set the metrics to the sums of every thread's counts (absolute: they only grow)."""
        with self._lock:
            tables = list(self._tables)
            requests: dict[tuple[str, str, str], int] = {}
            durations: dict[tuple[str, str], list[float]] = {}
            cache: dict[tuple[str, str], int] = {}
            for table in tables:
                for labels, n in list(table.requests.items()):  # a copy: other threads write
                    requests[labels] = requests.get(labels, 0) + n
                for timer, row in list(table.durations.items()):
                    total = durations.setdefault(timer, [0.0] * (_SUM + 1))
                    for i, value in enumerate(list(row)):
                        total[i] += value
                for read, n in list(table.cache.items()):
                    cache[read] = cache.get(read, 0) + n
            for labels, n in requests.items():
                metrics.HTTP_REQUESTS.labels(*labels)._value.set(n)
            for timer, row in durations.items():
                child = metrics.HTTP_DURATION.labels(*timer)
                for bucket, count in zip(child._buckets, row[:_SUM], strict=True):
                    bucket.set(count)
                child._sum.set(row[_SUM])
            for read, n in cache.items():
                metrics.CACHE_READS.labels(*read)._value.set(n)
            metrics.IN_FLIGHT.set(sum(table.busy for table in tables))

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()


BUFFER = Buffer()
