"""Label images as sets of objects, and the pixel counts shared by two such sets.

Shared by the GlaS object metrics (:mod:`.objects`) and the IoU matching
(:mod:`.matching`). numpy and SciPy only; nothing here builds a dense ``N x M`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

COMPONENTS = {
    2: "connected components (8-connectivity)",
    3: "connected components (26-connectivity)",
}
INSTANCES = "instance ids"
OBJECTS_FROM = ("auto", "components", "instances")
"""How a label image becomes objects: ``auto`` (a binary mask -> connected components,
more than one non-zero value -> instance ids), or either one forced."""


@dataclass(frozen=True)
class Objects:
    """A label image relabelled ``1..n`` (0 = background).

    Attributes
    ----------
    labels : (Y, X) or (Z, Y, X) ndarray of int32/int64
        Object ids, sequential.
    n : int
        Number of objects.
    areas : (n + 1,) ndarray of int64
        Pixels per id (``areas[0]``: background).
    source : str
        How the objects were found (connected components or instance ids).
    """

    labels: np.ndarray
    n: int
    areas: np.ndarray
    source: str


def as_objects(labels: np.ndarray, *, name: str = "labels", objects_from: str = "auto") -> Objects:
    """The objects of a label image (see :data:`OBJECTS_FROM`).

    Parameters
    ----------
    labels : (Y, X) or (Z, Y, X) ndarray of bool or non-negative integers
        A binary mask or an instance map.
    name : str
        Named in error messages (``prediction``, ``truth``).
    objects_from : {"auto", "components", "instances"}
        ``components``: objects are the 8-connected (2D) or 26-connected (3D) components
        of ``labels > 0``; ``instances``: each non-zero value is one object; ``auto``:
        components for a binary mask (one non-zero value), instance ids otherwise.

    Raises
    ------
    ValueError, TypeError
        For another dimensionality, a float or negative label image, or an unknown
        ``objects_from``.
    """
    labels = check_labels(labels, name)
    if objects_from not in OBJECTS_FROM:
        raise ValueError(f"objects_from must be one of {OBJECTS_FROM}, got {objects_from!r}")
    if objects_from == "auto":
        top = int(labels.max(initial=0))
        binary = top <= 1 or not np.any((labels != 0) & (labels != top))
        objects_from = "components" if binary else "instances"
    if objects_from == "components":
        structure = np.ones((3,) * labels.ndim, bool)
        ids, n = ndimage.label(labels > 0, structure=structure)
        source = COMPONENTS[labels.ndim]
    else:
        ids, n = sequential(labels)
        source = INSTANCES
    areas = np.bincount(ids.ravel(), minlength=n + 1).astype(np.int64)
    return Objects(ids, int(n), areas, source)


def check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """``labels`` as a 2D/3D array of bool or non-negative integers (ValueError otherwise)."""
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2D (Y, X) or 3D (Z, Y, X), got shape {labels.shape}")
    if labels.dtype == bool:
        return labels
    if labels.dtype.kind not in "ui":
        raise TypeError(f"{name} must hold integer labels or bool, got dtype {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds negative labels (min {labels.min()}); ids must be >= 0")
    return labels


def check_pair(pred: np.ndarray, truth: np.ndarray) -> None:
    """ValueError naming both shapes when they differ."""
    if np.shape(pred) != np.shape(truth):
        raise ValueError(
            f"prediction shape {np.shape(pred)} != truth shape {np.shape(truth)}; "
            "label images are compared pixel by pixel"
        )


def sequential(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """``(ids, n)``: the non-zero values of ``labels`` renumbered ``1..n`` in value order."""
    flat = labels.ravel()
    if flat.dtype == bool or flat.dtype.itemsize == 8:
        flat = flat.astype(np.int64)  # bincount takes no bool, nor uint64
    top = int(flat.max(initial=0))
    if top <= max(flat.size, 1 << 16):  # a lookup table no larger than the image
        present = np.bincount(flat, minlength=top + 1) > 0
        present[0] = False
        table = np.cumsum(present, dtype=np.int64) * present
        n = int(present.sum())
        ids = table.astype(np.int32 if n < 2**31 else np.int64)[flat]
    else:
        values, inverse = np.unique(flat, return_inverse=True)
        if values[0] != 0:
            inverse = inverse + 1
        n = int(np.count_nonzero(values))
        ids = inverse.astype(np.int64)
    return ids.reshape(labels.shape), n


def pair_counts(a: Objects, b: Objects) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ia, ib, count)``: every pair of overlapping objects and its shared pixel count.

    Sparse: one entry per pair that shares a pixel, from the pixels where both are
    foreground (never an ``a.n x b.n`` matrix unless it is smaller than the image).
    Pairs are sorted by ``ia``, then ``ib``.
    """
    both = (a.labels > 0) & (b.labels > 0)
    ia = a.labels[both].astype(np.int64)
    ib = b.labels[both].astype(np.int64)
    width = b.n + 1
    if (a.n + 1) * width <= max(ia.size, 1 << 16):
        counts = np.bincount(ia * width + ib, minlength=(a.n + 1) * width)
        keys = np.flatnonzero(counts)
        counts = counts[keys]
    else:
        keys, counts = np.unique(ia * width + ib, return_counts=True)
    return keys // width, keys % width, counts.astype(np.int64)


def best_partner(ia: np.ndarray, ib: np.ndarray, count: np.ndarray, n: int) -> tuple:
    """For each object ``1..n`` of the ``ia`` side, the ``ib`` object it overlaps most.

    Ties go to the smallest id (as the GlaS challenge code's ``argmax`` does).

    Returns
    -------
    partner : (n + 1,) ndarray of int64
        0 where an object overlaps nothing.
    shared : (n + 1,) ndarray of int64
        Pixels shared with that partner.
    """
    partner = np.zeros(n + 1, np.int64)
    shared = np.zeros(n + 1, np.int64)
    if ia.size:
        order = np.lexsort((ib, -count, ia))
        first = order[np.r_[True, ia[order][1:] != ia[order][:-1]]]
        partner[ia[first]] = ib[first]
        shared[ia[first]] = count[first]
    return partner, shared


def diagonal(shape: tuple[int, ...]) -> float:
    """The largest distance between two pixels of an image of ``shape`` (in pixels)."""
    return float(np.sqrt(sum((s - 1) ** 2 for s in shape)))
