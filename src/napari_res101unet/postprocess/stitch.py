"""Instance ids unique over an image segmented block by block, with the objects that
block edges cut merged again (as Cellpose's ``contrib/distributed_segmentation.py``).

The steps, each a function a dask/zarr runner can call on its own:

1. per block: :func:`local_ids` (ids ``1..n_k``), then the block's id offset from all
   counts (:func:`block_offsets`) gives global ids (:func:`offset_ids`);
2. per pair of touching blocks: the pairs of ids that touch across their shared face
   (:func:`contact_pairs` on the two one-pixel slabs, optionally with labels shrunk in the
   face plane, Cellpose's ``label_dist_th``), or, where blocks overlap,
   :func:`overlap_pairs` on the shared region;
3. once: :func:`merge_table`, the union-find (connected components of the pair graph)
   giving a relabel table to ids ``1..m``;
4. per block: :func:`relabel` with that table.

:func:`stitch_blocks` composes them over numpy blocks in memory. Blocks form a
rectilinear grid (as zarr/dask chunks do: along each axis the blocks' ranges are equal
or disjoint) and do not overlap. With ``connectivity="full"`` and no shrinking, the
connected components of each block stitch into exactly the connected components
(8-/26-connected) of the whole image. Objects that merely touch at a block edge are
merged too (as in Cellpose): blocks that overlap, with :func:`overlap_pairs`, tell them
apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .instances import sequential_ids

CONNECTIVITY = ("face", "full")


@dataclass(frozen=True)
class Block:
    """A block of labels and where it lies: ``image[origin[k]:origin[k] + shape[k], ...]``."""

    origin: tuple[int, ...]
    labels: np.ndarray


def local_ids(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """``(ids, n)``: a block's labels renumbered ``1..n`` (int64)."""
    ids = sequential_ids(np.asarray(labels)).astype(np.int64)
    return ids, int(ids.max(initial=0))


def block_offsets(counts: Sequence[int]) -> np.ndarray:
    """Id offset of each block: the objects of all blocks before it."""
    return np.concatenate([[0], np.cumsum(np.asarray(counts, np.int64))[:-1]])


def offset_ids(ids: np.ndarray, offset: int) -> np.ndarray:
    """Local ids ``1..n`` shifted to global ids ``offset + 1..offset + n`` (0 stays 0)."""
    return np.where(ids > 0, ids + offset, 0)


def contact_pairs(
    low: np.ndarray,
    high: np.ndarray,
    axes: Sequence[int],
    *,
    connectivity: str = "full",
    shrink: int = 0,
) -> np.ndarray:
    """Pairs of ids that touch across the boundary between two blocks.

    Parameters
    ----------
    low, high : ndarray of global ids, same shape
        The last slab of the lower block and the first slab of the upper one: one pixel
        thick along ``axes`` (where the blocks meet), the blocks' common range elsewhere.
    axes : sequence of int
        The axes along which the blocks are neighbours (one for a shared face, more for
        blocks that meet at an edge or a corner).
    connectivity : {"face", "full"}
        ``face``: only pixels directly across the face (blocks meeting at an edge or a
        corner give no pairs); ``full``: diagonal neighbours too (8-/26-connectivity).
    shrink : int
        Drop pixels within ``shrink`` pixels of another label in the slab first, so that
        two objects meeting near the face are not merged by a one-pixel disagreement.

    Returns
    -------
    (K, 2) ndarray of int64
        Unique ``(low id, high id)`` pairs.
    """
    if connectivity not in CONNECTIVITY:
        raise ValueError(f"connectivity must be one of {CONNECTIVITY}, got {connectivity!r}")
    if low.shape != high.shape:
        raise ValueError(f"slab shapes differ: {low.shape} and {high.shape}")
    if connectivity == "face" and len(axes) > 1:
        return np.zeros((0, 2), np.int64)
    low, high = _shrunk(low, shrink), _shrunk(high, shrink)
    along = [k for k in range(low.ndim) if k not in axes]
    steps = (-1, 0, 1) if connectivity == "full" else (0,)
    found = []
    for shift in itertools.product(steps, repeat=len(along)):
        a, b = low, high
        for k, s in zip(along, shift):
            a, b = _shifted(a, b, k, s)
        both = (a > 0) & (b > 0)
        found.append(np.column_stack([a[both], b[both]]))
    pairs = np.concatenate(found).astype(np.int64)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def _shifted(a: np.ndarray, b: np.ndarray, axis: int, step: int):
    """``a[i]`` against ``b[i + step]`` along ``axis``."""
    if step == 0:
        return a, b
    n = a.shape[axis]
    head = [slice(None)] * a.ndim
    tail = [slice(None)] * a.ndim
    head[axis], tail[axis] = slice(0, n - 1), slice(1, n)
    return (a[tuple(head)], b[tuple(tail)]) if step > 0 else (a[tuple(tail)], b[tuple(head)])


def _shrunk(labels: np.ndarray, shrink: int) -> np.ndarray:
    if shrink <= 0:
        return labels
    size = 2 * shrink + 1
    same = ndimage.minimum_filter(labels, size, mode="nearest") == ndimage.maximum_filter(
        labels, size, mode="nearest"
    )
    return np.where(same, labels, 0)


def overlap_pairs(a: np.ndarray, b: np.ndarray, *, min_fraction: float = 0.5) -> np.ndarray:
    """Pairs of ids that are the same object where two blocks overlap.

    ``a`` and ``b`` label the same region (global ids of each block). A pair is kept when
    its shared pixels are at least ``min_fraction`` of the smaller of the two objects'
    pixels in the region, so neighbours that touch or overlap a little stay apart.
    """
    if a.shape != b.shape:
        raise ValueError(f"overlap regions differ in shape: {a.shape} and {b.shape}")
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    both = (a > 0) & (b > 0)
    pairs, shared = np.unique(np.column_stack([a[both], b[both]]), axis=0, return_counts=True)
    if not len(pairs):
        return np.zeros((0, 2), np.int64)
    ids_a, size_a = np.unique(a[a > 0], return_counts=True)
    ids_b, size_b = np.unique(b[b > 0], return_counts=True)
    smaller = np.minimum(
        size_a[np.searchsorted(ids_a, pairs[:, 0])], size_b[np.searchsorted(ids_b, pairs[:, 1])]
    )
    return pairs[shared >= min_fraction * smaller].astype(np.int64)


def merge_table(n_ids: int, pairs: np.ndarray) -> np.ndarray:
    """Relabel table ``(n_ids + 1,)``: merged ids share one new id, ids ``1..m`` in order of
    each group's smallest old id, 0 stays 0."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 1 or pairs.max() > n_ids):
        raise ValueError(f"pairs hold ids outside 1..{n_ids}")
    graph = coo_matrix(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_ids + 1, n_ids + 1)
    )
    _, group = connected_components(graph, directed=False)
    _, table = np.unique(group, return_inverse=True)  # group 0 holds only id 0
    return table.astype(np.int64)


def relabel(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Global ids through a :func:`merge_table`: ``uint16``, or ``uint32`` above 65,535."""
    dtype = np.uint16 if table.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    return table.astype(dtype)[ids]


def stitch_blocks(
    blocks: Sequence[Block],
    shape: Sequence[int],
    *,
    connectivity: str = "full",
    shrink: int = 0,
) -> np.ndarray:
    """One label image from blocks labelled separately, objects cut by block edges merged.

    Parameters
    ----------
    blocks : sequence of Block
        Non-overlapping blocks on a rectilinear grid covering ``shape``; each holds its own
        ids (any non-negative integers).
    shape : sequence of int
        The image's shape.
    connectivity, shrink
        How ids touching across block boundaries are paired (see :func:`contact_pairs`).

    Returns
    -------
    ndarray of uint16 or uint32
        Ids ``1..m``, unique over the image.
    """
    shape = tuple(int(s) for s in shape)
    cells = _grid(blocks, shape)
    ids, counts = zip(*(local_ids(b.labels) for b in blocks)) if blocks else ((), ())
    offsets = block_offsets(counts)
    glob = [offset_ids(i, int(o)) for i, o in zip(ids, offsets)]
    pairs, steps = [np.zeros((0, 2), np.int64)], _forward_steps(len(shape))
    for cell, k in cells.items():
        for step in steps:
            other = cells.get(tuple(c + s for c, s in zip(cell, step)))
            if other is not None:
                a, b, axes = _slabs(glob[k], glob[other], step)
                pairs.append(contact_pairs(a, b, axes, connectivity=connectivity, shrink=shrink))
    table = merge_table(int(sum(counts)), np.concatenate(pairs))
    out = np.zeros(shape, np.uint16 if table.max(initial=0) <= 65535 else np.uint32)
    for block, g in zip(blocks, glob):
        out[_region(block)] = relabel(g, table)
    return out


def _region(block: Block) -> tuple[slice, ...]:
    return tuple(slice(o, o + n) for o, n in zip(block.origin, block.labels.shape))


def _grid(blocks: Sequence[Block], shape: tuple[int, ...]) -> dict:
    """``{grid index: block number}``; ValueError unless the blocks tile ``shape`` as a grid."""
    ranges = [set() for _ in shape]
    for b in blocks:
        if len(b.origin) != len(shape) or b.labels.ndim != len(shape):
            raise ValueError(f"block at {b.origin} of shape {b.labels.shape} is not {len(shape)}D")
        for k, r in enumerate(zip(b.origin, np.add(b.origin, b.labels.shape))):
            ranges[k].add(tuple(int(v) for v in r))
    cuts = []
    for k, found in enumerate(ranges):
        ordered = sorted(found)
        edges = [0] + [stop for _, stop in ordered]
        if [start for start, _ in ordered] != edges[:-1] or edges[-1] != shape[k]:
            raise ValueError(f"blocks do not tile axis {k} (0..{shape[k]}) as a grid: {ordered}")
        cuts.append({start: i for i, (start, _) in enumerate(ordered)})
    cells = {tuple(c[o] for c, o in zip(cuts, b.origin)): i for i, b in enumerate(blocks)}
    if len(cells) != len(blocks) or len(cells) != int(np.prod([len(c) for c in cuts])):
        raise ValueError("blocks overlap or leave gaps: each grid cell needs exactly one block")
    return cells


def _forward_steps(ndim: int) -> list[tuple[int, ...]]:
    """Neighbour offsets counted once: the first non-zero step is +1."""
    steps = itertools.product((-1, 0, 1), repeat=ndim)
    return [s for s in steps if any(s) and next(v for v in s if v) == 1]


def _slabs(a: np.ndarray, b: np.ndarray, step: tuple[int, ...]):
    """The one-pixel slabs where block ``b`` (at ``step`` from ``a``) meets ``a``."""
    sa = tuple({1: slice(-1, None), -1: slice(0, 1)}.get(s, slice(None)) for s in step)
    sb = tuple({1: slice(0, 1), -1: slice(-1, None)}.get(s, slice(None)) for s in step)
    return a[sa], b[sb], [k for k, s in enumerate(step) if s]
