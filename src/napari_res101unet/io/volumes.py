"""Image and label stacks left on disk, read one slice at a time through a bounded cache.

A :class:`Volume` is a ``(N, Y, X[, C])`` stack in a zarr array, a NIfTI (read slice by
slice from nibabel's array proxy), an uncompressed TIFF (memory-mapped) or, for other
formats, read whole; each decoded slice goes through the per-process LRU :data:`CACHE`
(bounded in bytes by ``$NAPARI_RES101UNET_CACHE_MB``; each DataLoader worker has its own).
Training reads pairs larger than memory this way
(:mod:`napari_res101unet.training.lazy_pairs`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SLICE_CACHE_MB

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


CACHE = SliceCache(int(float(os.environ.get(CACHE_ENV, SLICE_CACHE_MB)) * 2**20))
"""The cache every :class:`Volume` of this process reads through."""


class Volume:
    """A ``(N, Y, X[, C])`` stack on disk (or any sliceable array), read one slice at a time.

    ``shape`` is the stack's (a 2D image is one slice); ``volume[s]`` the decoded slice.
    """

    def __init__(
        self, source: Any, name: str, key: str, transpose: bool = False, path: Path | None = None
    ) -> None:
        self.source, self.name, self.key, self.transpose = source, name, key, transpose
        self.path = path
        shape = tuple(int(v) for v in source.shape)
        if transpose:  # nibabel (X, Y, Z) -> (Z, Y, X)
            shape = (shape[2], shape[1], shape[0])
        self.shape = shape
        self.dtype = np.dtype(source.dtype)
        self.stack, self.channels = len(shape) >= 3, False  # set by check_shapes
        self.cast: np.dtype | None = None

    def spatial(self, with_channels: bool) -> tuple[int, ...]:
        shape = self.shape[:-1] if with_channels else self.shape
        return shape if len(shape) == 3 else (1, *shape)

    def __getitem__(self, s: int) -> np.ndarray:
        return CACHE.get((self.key, int(s)), lambda: self._read(int(s)))

    def _read(self, s: int) -> np.ndarray:
        if self.transpose:
            out = np.swapaxes(np.asarray(self.source[:, :, s]), 0, 1)
        elif not self.stack:
            out = np.asarray(self.source[...])
        else:
            out = np.asarray(self.source[s])
        if not out.dtype.isnative:
            out = out.astype(out.dtype.newbyteorder("="))
        return out if self.cast is None else out.astype(self.cast)


def open_volume(item: Any, name: str) -> Volume | None:
    """A :class:`Volume` for a path or array-like on disk; None for an in-memory array."""
    if isinstance(item, Volume):
        return item
    if isinstance(item, (str, os.PathLike)):
        return open_path(Path(item), name)
    if isinstance(item, np.ndarray) or not hasattr(item, "shape") or not hasattr(item, "dtype"):
        return None
    return Volume(item, name, f"{name}@{id(item)}")


def open_path(path: Path, name: str) -> Volume:
    if not path.exists():
        raise ValueError(f"{name}: {path} does not exist")
    key = f"{path.resolve()}@{path.stat().st_mtime_ns}"
    text = path.name.lower()
    if text.endswith(".zarr") or (path.is_dir() and (path / "zarr.json").exists()):
        try:
            import zarr
        except ImportError:
            raise ImportError("reading .zarr training data needs zarr: pip install zarr") from None
        return Volume(zarr.open_array(str(path), mode="r"), name, key, path=path)
    if text.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        img = nib.load(str(path))
        if len(img.shape) == 3:
            vol = Volume(img.dataobj, name, key, transpose=True, path=path)
            slope, inter = img.header.get_slope_inter()
            if slope not in (None, 1.0) or inter not in (None, 0.0):
                # as the reader: scaled integral values (CT) become int16, others float32
                whole = float(slope or 1).is_integer() and float(inter or 0).is_integer()
                vol.cast = np.dtype(np.int16 if whole and vol.dtype.kind in "iu" else np.float32)
                vol.dtype = vol.cast
            return vol
    if text.endswith((".tif", ".tiff")):
        import tifffile

        try:
            return Volume(tifffile.memmap(str(path), mode="r"), name, key, path=path)
        except (ValueError, OSError):
            pass  # compressed or not contiguous: read whole below
    from ._read import read_image

    return Volume(read_image(path).data, name, key, path=path)
