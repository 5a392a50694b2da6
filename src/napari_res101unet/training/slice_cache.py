"""The per-process LRU of decoded slices that lazy training data reads through (bounded
in bytes by ``$NAPARI_RES101UNET_CACHE_MB``, 512 by default; each DataLoader worker has its
own)."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import numpy as np

CACHE_ENV = "NAPARI_RES101UNET_CACHE_MB"


class SliceCache:
    """An LRU of decoded slices, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.nbytes = max_bytes, 0
        self._items: OrderedDict[Any, np.ndarray] = OrderedDict()

    def get(self, key: Any, load) -> np.ndarray:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = np.ascontiguousarray(load())
        value.setflags(write=False)
        self._items[key] = value
        self.nbytes += value.nbytes
        while self.nbytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.nbytes -= old.nbytes
        return value


CACHE = SliceCache(int(float(os.environ.get(CACHE_ENV, "512")) * 2**20))
