"""Training pairs left on disk: read slice by slice through a bounded cache.

``train`` takes, in place of arrays, file paths (NIfTI through nibabel's array proxy,
uncompressed TIFF memory-mapped by tifffile, ``.zarr`` arrays chunk by chunk; other
files are read whole) or array-likes with ``shape``/``dtype``/slicing (a zarr array).
Whole slices ``[z]`` are decoded on demand and kept in a per-process LRU cache of
``$NAPARI_RES101UNET_CACHE_MB`` MiB (default 512; each DataLoader worker has its own).

Foreground oversampling uses an index built in one pass over the labels (per slice: the
pixel count of each label value and up to :data:`COORDS_PER_CLASS` random pixels of each
foreground class). For a file it is stored next to it as ``.<name>.fgindex.npz`` (keyed by
size, time and the label rules; rebuilt when any changes; kept in memory only when the
folder is read-only).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.volumes import (  # noqa: F401 (CACHE_ENV, SliceCache: re-exported)
    CACHE_ENV,
    SliceCache,
    Volume,
    open_path,
    open_volume,
)
from ..preprocess.pairs import CheckedPair, Prepared, check_pairs, prepare
from .lazy_index import LazyLabels, build_index
from .patches import PatchSampler

_LAZY = (".zarr", ".nii", ".nii.gz", ".tif", ".tiff")
COORDS_PER_CLASS = 2048


def is_lazy(x: Any) -> bool:
    return isinstance(x, (LazyLabels, LazyImage))


def _is_disk(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike, Volume)) or (
        not isinstance(x, np.ndarray)
        and hasattr(x, "shape")
        and hasattr(x, "dtype")
        and not hasattr(x, "__array_interface__")
        and not _is_tensor_like(x)
    )


def _is_tensor_like(x: Any) -> bool:
    return type(x).__module__.startswith(("torch", "dask", "xarray"))


def check_any(
    pairs: Any,
    *,
    ignore_index: int | None = None,
    sparse: bool = False,
    names: Sequence[str] | None = None,
    what: str = "pairs",
    mask_files: bool = False,
) -> list[CheckedPair]:
    """:func:`~napari_res101unet.preprocess.pairs.check_pairs`, or for pairs with data on
    disk the same rules from headers and one pass over the labels (building the index)."""
    if not isinstance(pairs, Sequence) or isinstance(pairs, (str, np.ndarray)):
        return check_pairs(pairs, ignore_index=ignore_index, sparse=sparse, names=names, what=what)
    disk = any(isinstance(p, (tuple, list)) and any(map(_is_disk, p)) for p in pairs)
    if not disk:
        return check_pairs(pairs, ignore_index=ignore_index, sparse=sparse, names=names, what=what)
    if names is not None and len(names) != len(pairs):
        raise ValueError(f"{len(names)} names given for {len(pairs)} {what}")
    volumes = open_pairs(pairs, names, what)
    ignore = 255 if sparse else ignore_index
    out = []
    for i, (image, labels, name) in enumerate(volumes):
        lazy = build_index(labels, name, ignore, sparse, mask_files)
        view = LazyImage(image, name)
        out.append(CheckedPair(view, lazy, lazy.counts, i, name, lazy.values))
    return out


def open_pairs(pairs: Sequence, names: Sequence[str] | None, what: str = "pairs"):
    """``[(image Volume, labels Volume, name)]`` with shapes checked (headers only)."""
    out = []
    for i, pair in enumerate(pairs):
        name = f"'{names[i]}'" if names is not None else f"{what}[{i}]"
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{name} must be an (image, labels) pair")
        image = open_volume(pair[0], name) or Volume(np.asarray(pair[0]), name, f"{name}@i")
        labels = open_volume(pair[1], name) or Volume(np.asarray(pair[1]), name, f"{name}@l")
        check_shapes(image, labels, name)
        out.append((image, labels, name))
    return out


def check_shapes(image: Volume, labels: Volume, name: str) -> None:
    """ValueError naming the pair when the image's spatial shape is not the labels'."""
    lab = labels.shape
    if len(lab) not in (2, 3) or len(image.shape) not in (len(lab), len(lab) + 1):
        ok = False
    else:
        ok = image.shape[: len(lab)] == lab
    if not ok:
        raise ValueError(
            f"{name}: image shape {image.shape} does not match labels shape {lab}; labels "
            "must be (Y, X) for a (Y, X[, C]) image or (Z, Y, X) for a (Z, Y, X[, C]) stack"
        )
    if labels.dtype.kind not in "iub":
        raise TypeError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    image.channels = len(image.shape) == len(lab) + 1
    image.stack = len(lab) == 3


class LazyImage:
    """``(N, Y, X, C)`` slices of an image :class:`Volume` (``[s]`` reads slice ``s``)."""

    def __init__(self, volume: Volume, name: str, in_channels: int | None = None) -> None:
        self.volume, self.name, self.in_channels = volume, name, in_channels
        c = volume.shape[-1] if volume.channels else 1
        n, y, x = volume.spatial(volume.channels)
        self.shape = (n, y, x, in_channels or c)
        self.raw_channels, self.dtype = c, volume.dtype

    def __getitem__(self, s: int) -> np.ndarray:
        from ..preprocess.normalize import adapt_channels

        raw = self.volume[s]
        raw = raw if self.volume.channels else raw[..., None]
        return adapt_channels(raw, self.in_channels)[0] if self.in_channels else raw

    def sample(self, limit: int = 64) -> np.ndarray:
        """Evenly strided slices (as the in-memory normaliser samples them)."""
        n = self.shape[0]
        zs = range(0, n, max(1, -(-n // limit)))
        return np.stack([self[s] for s in zs])


def prepare_any(checked: list, **kw) -> list[Prepared]:
    """:func:`~.pairs.prepare` for a mix of pairs in memory and pairs left on disk (in
    their order); ``kw``: ``ignore_index``, ``in_channels``, ``normalization``."""
    return [
        prepare_lazy(c, kw["ignore_index"], kw["in_channels"], kw["normalization"])
        if isinstance(c.labels, LazyLabels)
        else prepare([c], **kw)[0]
        for c in checked
    ]


def prepare_lazy(c: CheckedPair, ignore_index, in_channels: int, normalization: dict):
    """A :class:`Prepared` whose data and labels stay on disk."""
    from ..preprocess.normalize import make_normalizer

    data = LazyImage(c.slices.volume, c.name, in_channels)
    labels = c.labels.with_ignore(ignore_index)
    norm = make_normalizer(data.sample(), normalization, in_channels)
    used = [s for s in range(labels.shape[0]) if labels.labelled[s]]
    return Prepared(data, labels, norm, c.index, used)


class LazySampler(PatchSampler):
    """:class:`PatchSampler` over lazy items: tables and foreground centres from the index
    (the slices themselves are read only when a patch is cut from them)."""

    def __init__(self, items, patch_size, batch_size, **settings):
        from .lazy_index import index_of

        self.index = [index_of(it.labels) for it in items]
        super().__init__(items, patch_size, batch_size, **settings)

    def _slice_counts(self):
        for i, (item, idx) in enumerate(zip(self.items, self.index)):
            for s in item.slices:
                yield i, s, idx.slice_area(s), list(idx.classes(s))

    def _pixels_of(self, i: int, s: int, k: int):
        return self.index[i].coords(s, k)


def folder_pairs(images: Path, masks: Path, *, binary: bool = False):
    """``([(image Volume, labels Volume)], names)`` for two folders matched by file name as
    :func:`napari_res101unet.io.folders.read_pairs` matches them (``.zarr`` arrays too),
    nothing read but headers. Masks follow the folder rules: 0/255 become 0/1, ``binary``
    makes every mask ``> 0``.
    """
    from ..io.folders import match_masks, read_mask

    pairs, names = [], []
    for path, mask in match_masks(images, masks, also=_zarrs):
        if mask.name.lower().endswith(_LAZY):
            labels = open_path(mask, f"'{path.name}'")
            labels.mask_rule = "binary" if binary else "file"
        else:  # PNG/JPEG/... masks are small: read whole with the folder rules
            labels = Volume(read_mask(mask, binary=binary), path.name, f"{mask}@mask", path=mask)
        pairs.append((open_path(path, f"'{path.name}'"), labels))
        names.append(path.name)
    return pairs, names


def _zarrs(folder: Path) -> list[tuple[str, Path]]:
    return [(p.name[: -len(".zarr")], p) for p in sorted(folder.glob("*.zarr"))]
