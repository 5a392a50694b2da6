"""Objects over an image segmented block by block (``segment_blocks(..., instances=True)``).

Each block separates its own objects (:func:`local_objects`, in the process that ran the
block) and writes their local ids ``1..n`` into the store; it sends back only its count,
the pixels of each id and its four one-pixel edges. Then, in this process,
:func:`stitch_store` gives every block an id offset (the objects of the blocks before it),
pairs the ids that touch across each block edge and corner (8-connected, as
:func:`~napari_res101unet.postprocess.stitch.contact_pairs`), merges them with a union-find
(:func:`~napari_res101unet.postprocess.stitch.merge_table`), drops objects smaller than the
smallest object size *after* merging (a sliver of an object cut by a block edge is not a
small object), and rewrites each block with its final ids, unique over the image. As in
Cellpose's distributed segmentation, two objects that merely touch across a block edge are
merged. A stack's blocks are its slices, so objects are found per slice there.

What a block can drop at once (:func:`drop_specks`): a foreground component that touches
no block edge cannot grow by merging, so when it is smaller than the smallest object
size, holes filled, no object it holds can be kept; it is set to background before the
objects are separated. On a noisy slide these specks are most of the components (a
thresholded 4096^2 block of the 40,000^2 benchmark: 146,676 components, 16 of them of
50 pixels or more), and separating them was most of a block's object time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..config import SegmentSettings
from ..io.label_store import read_block, write_block
from ..postprocess.objects import min_size_of, objects_from_labels
from ..postprocess.stitch import block_offsets, contact_pairs, merge_table, offset_ids

STEPS = ((0, 1), (1, 0), (1, 1), (1, -1))
"""Neighbours of a block counted once: right, below, below-right, below-left."""


@dataclass(frozen=True)
class BlockObjects:
    """What a block sends back: its object count, the pixels of each local id (index 0:
    background) and its edges (``top``, ``bottom``, ``left``, ``right``: local ids)."""

    count: int
    sizes: np.ndarray
    edges: dict


def local_objects(
    labels: np.ndarray, settings: SegmentSettings, spec: Any
) -> tuple[np.ndarray, BlockObjects]:
    """A block's objects as local ids ``1..n`` (uint32) and its :class:`BlockObjects`; no
    object is dropped for its size yet (see :func:`stitch_store`)."""
    whole = dataclasses.replace(settings, min_object_size=0)
    labels = drop_specks(labels, min_size_of(settings, spec))
    objects, _ = objects_from_labels(labels, whole, spec)
    ids = objects.astype(np.uint32)
    count = int(ids.max(initial=0))
    edges = {"top": ids[0], "bottom": ids[-1], "left": ids[:, 0], "right": ids[:, -1]}
    sizes = np.bincount(ids.ravel(), minlength=count + 1)
    return ids, BlockObjects(count, sizes, {k: v.copy() for k, v in edges.items()})


def drop_specks(labels: np.ndarray, min_size: int) -> np.ndarray:
    """A block's labels without the foreground components that touch no block edge and
    have fewer than ``min_size`` pixels with their holes filled (8-connected; such a
    component holds no object that :func:`stitch_store` would keep). Returns ``labels``
    itself when nothing is dropped."""
    if min_size <= 1 or labels.ndim != 2 or not labels.size:
        return labels
    full = np.ones((3, 3), bool)
    components, n = ndimage.label(ndimage.binary_fill_holes(labels > 0), structure=full)
    if not n:
        return labels
    small = np.bincount(components.ravel(), minlength=n + 1) < min_size
    small[0] = False
    rim = np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]])
    small[rim] = False
    if not small.any():
        return labels
    return np.where(small[components], 0, labels).astype(labels.dtype, copy=False)


def edge_pairs(a: np.ndarray, b: np.ndarray, step: tuple[int, int]) -> np.ndarray:
    """Pairs of (global) ids touching between block ``a``'s edges and those of block ``b``
    at ``step`` (one of :data:`STEPS`); ``a``, ``b``: the blocks' edges as global ids."""
    if step == (0, 1):
        return contact_pairs(a["right"][:, None], b["left"][:, None], [1])
    if step == (1, 0):
        return contact_pairs(a["bottom"][None], b["top"][None], [0])
    if step == (1, 1):
        return contact_pairs(a["bottom"][-1:, None], b["top"][:1, None], [0, 1])
    return contact_pairs(a["bottom"][:1, None], b["top"][-1:, None], [0, 1])


def stitch_store(
    path: str,
    found: dict[tuple[int, int, int], BlockObjects],
    block: tuple[int, int],
    stacked: bool,
    settings: SegmentSettings,
    spec: Any,
) -> int:
    """Give the blocks of the store at ``path`` their final object ids; returns the number
    of objects. ``found``: each block's :class:`BlockObjects` by ``(slice, row0, col0)``."""
    indices = sorted(found)
    offsets = dict(zip(indices, block_offsets([found[i].count for i in indices]).tolist()))
    edges = {i: {k: offset_ids(v.astype(np.int64), offsets[i]) for k, v in found[i].edges.items()}
             for i in indices}  # fmt: skip
    pairs = [np.zeros((0, 2), np.int64)]
    for s, y, x in indices:
        for dy, dx in STEPS:
            other = (s, y + dy * block[0], x + dx * block[1])
            if other in found:
                pairs.append(edge_pairs(edges[(s, y, x)], edges[other], (dy, dx)))
    total = sum(found[i].count for i in indices)
    table = merge_table(total, np.concatenate(pairs))
    sizes = np.zeros(int(table.max(initial=0)) + 1, np.int64)
    for i in indices:
        n = found[i].count
        np.add.at(sizes, table[offsets[i] + 1 : offsets[i] + n + 1], found[i].sizes[1 : n + 1])
    keep = sizes >= max(1, min_size_of(settings, spec))
    keep[0] = False
    final = np.zeros(len(sizes), np.uint32)
    final[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    table = final[table]
    for s, y, x in indices:
        local = found[(s, y, x)]
        if not local.count:
            continue
        region = _selection((s, y, x), block, stacked, local.edges)
        ids = read_block(path, region).astype(np.int64)
        write_block(path, region, table[offset_ids(ids, offsets[(s, y, x)])])
    return int(keep.sum())


def _selection(index, block, stacked: bool, edges: dict) -> tuple[slice, ...]:
    s, y, x = index
    h, w = len(edges["left"]), len(edges["top"])
    return ((s,) if stacked else ()) + (slice(y, y + h), slice(x, x + w))
