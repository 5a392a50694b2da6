"""The label index of a pair on disk: per-slice value counts and foreground coordinates.

Built in one pass over the label slices (bounded memory), from the raw values, and kept
next to a label file as ``.<name>.fgindex.npz`` (rebuilt when the file's size or time
changes; the label rules are applied to the index afterwards, so they never go stale).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io import volumes
from ..preprocess.pairs import IGNORE

COORDS = 2048
"""Random pixels kept per foreground value and slice (the centres of oversampled patches)."""
MAX_VALUE = 65535
FORMAT = 1


class RawIndex:
    """Raw label values per slice: ``counts (N, V)``, coordinates of values > 0."""

    def __init__(self, counts: np.ndarray, keys: np.ndarray, starts: np.ndarray, yx: np.ndarray):
        self.counts, self.keys, self.starts, self.yx = counts, keys, starts, yx
        self._where = {(int(s), int(v)): j for j, (s, v) in enumerate(keys)}

    def coords(self, s: int, value: int) -> np.ndarray:
        j = self._where.get((s, value))
        return self.yx[:0] if j is None else self.yx[self.starts[j] : self.starts[j + 1]]

    def save(self, path: Path, stamp: str) -> None:
        from ..io.files import atomic_target

        try:
            with atomic_target(path) as tmp, open(tmp, "wb") as f:
                np.savez(
                    f,
                    counts=self.counts,
                    keys=self.keys,
                    starts=self.starts,
                    yx=self.yx,
                    stamp=np.array(stamp),
                )
        except OSError:
            pass  # a read-only folder: the index lives in memory for this run

    @classmethod
    def load(cls, path: Path, stamp: str) -> RawIndex | None:
        try:
            with np.load(path) as f:
                if str(f["stamp"]) != stamp:
                    return None
                return cls(f["counts"], f["keys"], f["starts"], f["yx"])
        except (OSError, KeyError, ValueError):
            return None


def scan(read, n: int, name: str) -> RawIndex:
    """One pass over ``read(s)`` for ``s < n``: the :class:`RawIndex`."""
    rows, keys, starts, yx = [], [], [0], []
    for s in range(n):
        raw = np.asarray(read(s))
        if raw.dtype == bool:
            raw = raw.view(np.uint8)
        if raw.size and (int(raw.min()) < 0 or int(raw.max()) > MAX_VALUE):
            bad = int(raw.min()) if raw.min() < 0 else int(raw.max())
            raise ValueError(
                f"{name}: slice {s} holds label {bad}; labels must be class indices in "
                f"0..{MAX_VALUE} (binarise instance masks)"
            )
        rows.append(np.bincount(raw.ravel().astype(np.int64)))
        rng = np.random.default_rng([FORMAT, s])
        for v in np.flatnonzero(rows[-1][1:]) + 1:
            ys, xs = np.nonzero(raw == v)
            if len(ys) > COORDS:
                pick = np.sort(rng.choice(len(ys), COORDS, replace=False))
                ys, xs = ys[pick], xs[pick]
            keys.append((s, int(v)))
            yx.append(np.stack([ys, xs], 1).astype(np.int32))
            starts.append(starts[-1] + len(ys))
    width = max(len(r) for r in rows)
    counts = np.zeros((n, width), np.int64)
    for s, r in enumerate(rows):
        counts[s, : len(r)] = r
    yx_all = np.concatenate(yx) if yx else np.zeros((0, 2), np.int32)
    return RawIndex(counts, np.array(keys, np.int64).reshape(-1, 2), np.array(starts), yx_all)


class LazyLabels:
    """``(N, Y, X)`` labels of a :class:`~napari_res101unet.io.volumes.Volume`
    with the label rules applied on read (``[s]``); ``counts``/``values`` as in
    :class:`~napari_res101unet.preprocess.pairs.CheckedPair`."""

    def __init__(self, volume, raw: RawIndex, ignore, sparse: bool, squash: bool) -> None:
        self.volume, self.raw, self.ignore = volume, raw, ignore
        self.sparse, self.squash = sparse, squash
        self.shape = volume.spatial(False)
        self.mapping = self._mapping(raw.counts.shape[1])
        self.dtype = np.dtype(np.int16)
        totals = raw.counts.sum(0)
        merged: dict[int, int] = {}
        for v, n in enumerate(totals):
            k = int(self.mapping[v])
            if n and k != _DROP:
                merged[k] = merged.get(k, 0) + int(n)
        self.values = np.array(sorted(merged), np.int64)
        self.counts = np.array([merged[k] for k in sorted(merged)], np.int64)
        if not len(self.values):
            raise ValueError(
                f"{volume.name} has no labelled pixel (all are ignore_index={ignore}); label "
                "some pixels or leave the pair out"
            )
        self.index = SliceIndex(raw, self.mapping)
        self.labelled = self.index.area > 0

    def _mapping(self, width: int) -> np.ndarray:
        """Raw value -> class value (``_DROP`` for unlabelled)."""
        raw = np.arange(width, dtype=np.int64)
        if self.squash:
            raw = (raw > 0).astype(np.int64)
        if self.sparse:
            raw = np.where(raw == 0, _DROP, raw - 1)
        elif self.ignore is not None:
            raw = np.where(raw == self.ignore, _DROP, raw)
        return raw

    def with_ignore(self, ignore) -> LazyLabels:
        return self

    def __getitem__(self, s: int) -> np.ndarray:
        def load() -> np.ndarray:
            raw = np.asarray(self.volume[int(s)]).astype(np.int64)
            table = self.mapping.astype(np.int16)
            table[self.mapping == _DROP] = IGNORE
            return table[np.minimum(raw, len(table) - 1)]

        return volumes.CACHE.get(
            (self.volume.key, "labels", int(s), self.sparse, self.ignore), load
        )


_DROP = -(2**31)


class SliceIndex:
    """What the sampler needs per slice: labelled area, foreground classes, centres."""

    def __init__(self, raw: RawIndex, mapping: np.ndarray) -> None:
        self.raw, self.mapping = raw, mapping
        kept = mapping != _DROP
        self.area = raw.counts[:, kept].sum(1)

    def slice_area(self, s: int) -> int:
        return int(self.area[s])

    def classes(self, s: int) -> list[tuple[int, int]]:
        found: dict[int, int] = {}
        for v in np.flatnonzero(self.raw.counts[s]):
            k = int(self.mapping[v])
            if k > 0:
                found[k] = found.get(k, 0) + int(self.raw.counts[s, v])
        return sorted(found.items())

    def coords(self, s: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        raws = [v for v in np.flatnonzero(self.raw.counts[s]) if self.mapping[v] == k]
        yx = np.concatenate([self.raw.coords(s, int(v)) for v in raws])
        return yx[:, 0], yx[:, 1]


def build_index(volume, name: str, ignore, sparse: bool, mask_files: bool) -> LazyLabels:
    """The :class:`LazyLabels` of ``volume`` (index loaded from its file, or built)."""
    n = volume.spatial(False)[0]
    where = _index_path(volume)
    stamp = _stamp(volume)
    raw = RawIndex.load(where, stamp) if where is not None else None
    if raw is None:
        raw = scan(volume._read, n, name)
        if where is not None:
            raw.save(where, stamp)
    top = raw.counts.shape[1] - 1
    present = set(np.flatnonzero(raw.counts.sum(0)).tolist())
    rule = getattr(volume, "mask_rule", "file" if mask_files else None)
    squash = rule == "binary" or (rule == "file" and top in (255, 65535) and present <= {0, top})
    return LazyLabels(volume, raw, ignore, sparse, squash)


def index_of(labels: Any):
    """The :class:`SliceIndex` of lazy labels, or one built from ``(N, Y, X)`` int16 labels
    in memory (IGNORE already applied)."""
    if isinstance(labels, LazyLabels):
        return labels.index
    arr = np.asarray(labels)
    raw = scan(lambda s: np.where(arr[s] == IGNORE, 0, arr[s] + 1), len(arr), "labels")
    mapping = np.arange(raw.counts.shape[1], dtype=np.int64) - 1
    mapping[0] = _DROP
    return SliceIndex(raw, mapping)


def _index_path(volume) -> Path | None:
    path = getattr(volume, "path", None)
    if path is None:
        return None
    return Path(path).with_name(f".{Path(path).name}.fgindex.npz")


def _stamp(volume) -> str:
    path = getattr(volume, "path", None)
    if path is None:
        return ""
    st = os.stat(path)
    return json.dumps([FORMAT, st.st_size, st.st_mtime_ns, list(volume.shape)])
