"""A bounded cache of the rows the last searches returned (the Milvus store's only cache of chunk rows)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Iterable, Sequence


class RowCache:
    """The last rows searches returned, so that scoring and quoting them needs no second round trip.

    A row's key is a hash of its content, so a cached row can only be stale in its
    neighbourhood fields; writes through this store clear the cache.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {key: self._rows[key] for key in keys if key in self._rows}

    def put(self, rows: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            for row in rows:
                self._rows[row["id"]] = row
                self._rows.move_to_end(row["id"])
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
