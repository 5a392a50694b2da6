"""Hausdorff distances between single objects of two label images, object by object.

The distance is the one of the GlaS challenge code: over all pixels of both objects,
``max(max_a min_b |a - b|, max_b min_a |a - b|)`` in pixels. It is exact and cheap:

* the nearest pixel of object ``B`` to a pixel outside it is on ``B``'s surface (a pixel
  of ``B`` with a face neighbour outside ``B``), so each object keeps a KD-tree of its
  surface pixels only, built once, when first needed;
* pixels of ``A`` inside ``B`` are at distance 0 and are skipped.

Most pairs are done at once: one distance transform of ``B``'s background with the index
of the nearest ``B`` pixel gives, for each pixel of ``A_i``, its distance to ``B_j`` where
that nearest pixel belongs to ``B_j`` (:func:`partner_directed`); pairs where it does not
(touching objects) go object by object.

The nearest object of an unmatched one is searched with a lower bound: for any two pixel
sets, ``H(A, B) >= max_k max(|min_k(A) - min_k(B)|, |max_k(A) - max_k(B)|)`` (the pixel
of ``A`` on its lowest row is at least ``min_k(B) - min_k(A)`` away from every pixel of
``B``, and so on), which is the L-infinity distance of the bounding-box vectors
``(min_0, .., min_d, max_0, .., max_d)``. Candidates come from a KD-tree over those
vectors in order of the bound, and the search stops when the bound reaches the best
distance found.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ._objects import Objects


class ObjectGeometry:
    """Pixels, surface pixels and bounding boxes of every object of an :class:`Objects`."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self.flat = objects.labels.ravel()
        self.shape = objects.labels.shape
        self._pixels, self._starts = _grouped(self.flat, np.flatnonzero(self.flat), objects.n)
        surface = np.flatnonzero(_surface(objects.labels))
        self._surface, self._surface_starts = _grouped(self.flat, surface, objects.n)
        self.boxes = _boxes(self._pixels, self._starts, self.shape)
        self._points: dict[int, np.ndarray] = {}
        self._pixel_points: dict[int, np.ndarray] = {}
        self._trees: dict[int, cKDTree] = {}

    def pixels(self, i: int) -> np.ndarray:
        """Flat indices of object ``i``'s pixels."""
        return self._pixels[self._starts[i - 1] : self._starts[i]]

    def pixel_points(self, i: int) -> np.ndarray:
        """``(k, ndim)`` coordinates of object ``i``'s pixels (cached)."""
        points = self._pixel_points.get(i)
        if points is None:
            points = np.column_stack(np.unravel_index(self.pixels(i), self.shape)).astype(float)
            self._pixel_points[i] = points
        return points

    def surface_points(self, i: int) -> np.ndarray:
        """``(k, ndim)`` coordinates of object ``i``'s surface pixels (cached)."""
        points = self._points.get(i)
        if points is None:
            flat = self._surface[self._surface_starts[i - 1] : self._surface_starts[i]]
            points = np.column_stack(np.unravel_index(flat, self.shape)).astype(float)
            self._points[i] = points
        return points

    def tree(self, i: int) -> cKDTree:
        """KD-tree of object ``i``'s surface pixel coordinates (cached)."""
        tree = self._trees.get(i)
        if tree is None:
            tree = self._trees[i] = cKDTree(self.surface_points(i))
        return tree


def _grouped(flat: np.ndarray, indices: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``indices`` sorted by their label, and the end offset of each label ``1..n``."""
    ids = flat[indices]
    order = np.argsort(ids, kind="stable")
    ends = np.cumsum(np.bincount(ids, minlength=n + 1)[1:])
    return indices[order], np.r_[0, ends]


def _surface(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a face neighbour of another value (inside the image)."""
    out = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        differ = labels[tuple(lo)] != labels[tuple(hi)]
        out[tuple(lo)] |= differ
        out[tuple(hi)] |= differ
    return out & (labels > 0)


def _boxes(pixels: np.ndarray, starts: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(n, 2 * ndim)`` inclusive bounding boxes ``(min_0.., max_0..)`` of objects 1..n."""
    n = len(starts) - 1
    if n == 0:
        return np.zeros((0, 2 * len(shape)))
    coords = np.unravel_index(pixels, shape)
    lows = [np.minimum.reduceat(c, starts[:-1]) for c in coords]
    highs = [np.maximum.reduceat(c, starts[:-1]) for c in coords]
    return np.column_stack(lows + highs).astype(float)


BRUTE_FORCE = 1 << 14
"""Largest ``pixels x surface pixels`` measured pair by pair instead of with a KD-tree."""
FAST_LIMIT = 1 << 27
"""Largest ``pixels x ndim`` done by one distance transform with indices (int32 each)."""


def partner_directed(a: Objects, b: Objects, partner: np.ndarray) -> tuple:
    """Directed distances from each object ``a_i`` to ``b_{partner[i]}``, all at once.

    Returns
    -------
    dist : (n_a + 1,) ndarray of float
        ``max`` over pixels of ``a_i`` of the distance to ``b_{partner[i]}``.
    exact : (n_a + 1,) ndarray of bool
        False where a pixel of ``a_i`` lies nearer to (or inside) another object of
        ``b``: ``dist`` is then not that distance, and the pair is done one by one.
        All False when the image is over :data:`FAST_LIMIT`.
    """
    n = a.n
    if a.labels.size * a.labels.ndim > FAST_LIMIT or not partner.any():
        return np.zeros(n + 1), np.zeros(n + 1, bool)
    distance, nearest_pixel = ndimage.distance_transform_edt(b.labels == 0, return_indices=True)
    fg = a.labels > 0
    ids = a.labels[fg]
    near = b.labels[tuple(i[fg] for i in nearest_pixel)]
    ok = near == partner[ids]
    dist = np.zeros(n + 1)
    np.maximum.at(dist, ids[ok], distance[fg][ok])
    exact = np.bincount(ids[~ok], minlength=n + 1) == 0
    return dist, exact


def directed(a: ObjectGeometry, i: int, b: ObjectGeometry, j: int) -> float:
    """``max`` over pixels of object ``i`` of ``a`` of the distance to object ``j`` of ``b``."""
    pixels = a.pixels(i)
    coords = a.pixel_points(i)[b.flat[pixels] != j]
    if len(coords) == 0:
        return 0.0
    surface = b.surface_points(j)
    if len(coords) * len(surface) <= BRUTE_FORCE:  # small: all pairs beat a tree
        squared = ((coords[:, None, :] - surface[None, :, :]) ** 2).sum(axis=-1)
        return float(np.sqrt(squared.min(axis=1).max()))
    return float(b.tree(j).query(coords)[0].max())


def hausdorff(a: ObjectGeometry, i: int, b: ObjectGeometry, j: int) -> float:
    """Symmetric Hausdorff distance (pixels) between object ``i`` of ``a`` and ``j`` of ``b``."""
    return max(directed(a, i, b, j), directed(b, j, a, i))


def nearest(a: ObjectGeometry, ids: np.ndarray, b: ObjectGeometry) -> np.ndarray:
    """For objects ``ids`` of ``a``: the smallest Hausdorff distance to any object of ``b``.

    ``b`` must hold at least one object. See the module notes for the search.
    """
    out = np.zeros(len(ids))
    if len(ids) == 0:
        return out
    boxes = cKDTree(b.boxes)
    k = min(8, b.objects.n)
    bounds, found = boxes.query(a.boxes[ids - 1], k=k, p=np.inf)
    bounds, found = bounds.reshape(len(ids), k), found.reshape(len(ids), k)
    for row, i in enumerate(ids):
        out[row] = _search(a, int(i), b, boxes, bounds[row], found[row])
    return out


def _search(a, i, b, boxes, bounds, found) -> float:
    best, seen = np.inf, set()
    while True:
        for bound, j in zip(bounds, found):
            if bound >= best:
                return best
            if j not in seen:
                seen.add(j)
                best = min(best, hausdorff(a, i, b, int(j) + 1))
        if len(found) == b.objects.n:
            return best
        k = min(4 * len(found), b.objects.n)
        bounds, found = boxes.query(a.boxes[i - 1], k=k, p=np.inf)
