"""A small bounded least-recently-used cache (the viewer's images, features and matchers)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``capacity`` entries; reading or writing an entry makes it the most recent, and
    inserting beyond capacity drops the least recent. Not thread-safe: the viewer locks around it.

    ``hits`` / ``misses`` count :meth:`get_or_create` outcomes (tests and the status line use them).
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"An LRU cache needs a capacity >= 1, got {capacity}.")
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The entry (now most recent), or None."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        """The cached entry, or ``create()`` stored under ``key`` (nothing stored if it raises)."""
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        value = create()
        self.put(key, value)
        return value
