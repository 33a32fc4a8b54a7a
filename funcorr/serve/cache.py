"""A small bounded least-recently-used cache (the viewer's images, features and matchers).

Bounded by entry count and, optionally, by bytes: an entry count alone let three large uploads
grow the server by gigabytes, since one entry can be a few kB or a few hundred MB.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np
import torch

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def nbytes(value: object) -> int:
    """Bytes of the tensors, arrays and byte strings reachable from ``value`` through
    dataclass fields, containers and closures (features are closures over their maps), each
    storage counted once. Small Python objects count 0: they are noise next to feature maps."""
    seen: set[int] = set()  # ids of objects visited
    storages: set[int] = set()  # data pointers of tensor storages / array buffers counted

    def walk(obj: object) -> int:
        if obj is None or isinstance(obj, (int, float, str, bool, type)) or id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            return _count_once(storages, storage.data_ptr(), storage.nbytes())
        if isinstance(obj, np.ndarray):
            root = obj
            while isinstance(root.base, np.ndarray):
                root = root.base
            return _count_once(storages, root.__array_interface__["data"][0], root.nbytes)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return len(obj)
        if isinstance(obj, dict):
            return sum(walk(k) + walk(v) for k, v in obj.items())
        if isinstance(obj, (list, tuple, set, frozenset)):
            return sum(walk(item) for item in obj)
        if dataclasses.is_dataclass(obj):
            return sum(walk(getattr(obj, f.name)) for f in dataclasses.fields(obj))
        if isinstance(obj, functools.partial):
            return walk(obj.func) + walk(obj.args) + walk(obj.keywords)
        if callable(obj) and getattr(obj, "__closure__", None):
            return sum(walk(cell.cell_contents) for cell in obj.__closure__ if _filled(cell))
        return 0

    return walk(value)


def _count_once(counted: set[int], pointer: int, size: int) -> int:
    if pointer in counted:
        return 0
    counted.add(pointer)
    return size


def _filled(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # an empty cell (a variable assigned after the closure was made)
        return False
    return True


class LRUCache(Generic[K, V]):
    """At most ``capacity`` entries and, when ``max_bytes`` is set, at most that many bytes
    (:func:`nbytes` of each value, or ``size_of``); reading or writing an entry makes it the most
    recent, and inserting beyond either bound drops the least recent. The newest entry is always
    kept, even alone over the byte budget: the request that made it still needs it. Not
    thread-safe: the viewer locks around it.

    ``hits`` / ``misses`` count :meth:`get_or_create` outcomes (tests and the status line use them).
    """

    def __init__(
        self, capacity: int, max_bytes: int | None = None, size_of: Callable[[V], int] = nbytes
    ):
        if capacity < 1:
            raise ValueError(f"An LRU cache needs a capacity >= 1, got {capacity}.")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"An LRU cache needs a byte budget >= 1, got {max_bytes}.")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.size_of = size_of
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._sizes: dict[K, int] = {}
        self.bytes = 0
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
        if key in self._entries:
            self.bytes -= self._sizes.pop(key)
        size = self.size_of(value) if self.max_bytes is not None else 0
        self._entries[key] = value
        self._entries.move_to_end(key)
        self._sizes[key] = size
        self.bytes += size
        while len(self._entries) > 1 and (
            len(self._entries) > self.capacity
            or (self.max_bytes is not None and self.bytes > self.max_bytes)
        ):
            old, _ = self._entries.popitem(last=False)
            self.bytes -= self._sizes.pop(old)

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
