"""Where the model is unsure: a per-pixel uncertainty map and a "review these first" list.

The map is the **normalised entropy of the predicted class probabilities** (the blended,
and with test-time augmentation the flip-averaged, probabilities that the labels come
from), in [0, 1]: 0 where one class has all the probability, 1 where the classes are
equally likely (p = 0.5 for a binary model). Entropy rather than the variance over TTA
flips because it needs no second pass and works without TTA (off by default: it makes CPU
inference 4x slower); with TTA on, disagreement between flips pulls the averaged
probabilities towards 0.5, so the entropy grows where the flips disagree as well.

Numpy and scikit-image only: napari's process ranks a map the engine sent back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BY = ("slice", "region")
_EPS = 1e-7


def entropy_map(probabilities: np.ndarray, labels_ndim: int) -> np.ndarray:
    """Normalised entropy of class probabilities.

    Parameters
    ----------
    probabilities : ndarray
        Foreground probability of a binary model (the labels' shape), or ``(K, *spatial)``
        class probabilities of a multi-class model (summing to 1 over the first axis).
    labels_ndim : int
        Number of spatial dimensions (tells the two layouts apart).

    Returns
    -------
    (*spatial) float32 ndarray
        Uncertainty in [0, 1].
    """
    p = np.asarray(probabilities, np.float32)
    if p.ndim == labels_ndim:  # binary: foreground probability
        q = np.clip(p, _EPS, 1 - _EPS)
        h = -(q * np.log(q) + (1 - q) * np.log(1 - q)) / np.log(2.0)
        return np.clip(h, 0.0, 1.0).astype(np.float32)
    if p.ndim != labels_ndim + 1:
        raise ValueError(
            f"probabilities of shape {p.shape} do not match {labels_ndim}D labels "
            "(expected the labels' shape or (classes, *labels shape))"
        )
    k = p.shape[0]
    q = np.clip(p, _EPS, 1.0)
    h = -(p * np.log(q)).sum(axis=0) / np.log(max(k, 2))
    return np.clip(h, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Uncertain:
    """One item of a review list.

    Attributes
    ----------
    index : int
        Slice index (``by="slice"``) or region label (``by="region"``).
    score : float
        Mean uncertainty over the slice or region.
    bbox : tuple of int
        The region's bounding box (``min..., max...`` as skimage gives it); for a slice,
        ``()``.
    centroid : tuple of float
        The region's centroid in pixels (for jumping to it); for a slice, ``()``.
    """

    index: int
    score: float
    bbox: tuple = ()
    centroid: tuple = ()

    def describe(self, by: str = "slice") -> str:
        name = "slice" if by == "slice" else "region"
        return f"{name} {self.index} ({self.score:.2f})"


def rank_uncertain(
    uncertainty: Any,
    labels: Any = None,
    *,
    by: str = "slice",
    top: int | None = 5,
    min_size: int = 16,
) -> list[Uncertain]:
    """Slices of a stack, or connected regions, sorted by mean uncertainty (highest first).

    Parameters
    ----------
    uncertainty : (Y, X) or (Z, Y, X) array
        A map from ``segment(..., return_uncertainty=True)``.
    labels : array of the same shape, optional
        For ``by="region"``: the regions are the connected objects of ``labels`` (label
        > 0); without labels, the connected areas where the uncertainty is at least 0.5.
    by : {"slice", "region"}
        ``"slice"`` needs a stack (3D map).
    top : int or None
        How many to return (None: all).
    min_size : int
        For regions: smaller ones (in pixels) are left out (specks are not worth a look,
        and their mean is the noisiest).

    Returns
    -------
    list of :class:`Uncertain`
        "Review these first": the most uncertain first.
    """
    u = np.asarray(uncertainty, np.float32)
    if by not in BY:
        raise ValueError(f"by must be one of {BY}, got {by!r}")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive int or None, got {top!r}")
    if u.ndim not in (2, 3):
        raise ValueError(f"the uncertainty map must be 2D or 3D, got shape {u.shape}")
    if by == "slice":
        if u.ndim != 3:
            raise ValueError(
                f"by='slice' ranks the slices of a stack; this map is 2D {u.shape} "
                "(use by='region')"
            )
        means = u.reshape(len(u), -1).mean(axis=1)
        items = [Uncertain(int(i), float(means[i])) for i in range(len(u))]
    else:
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
            raise ValueError(f"min_size must be a positive int, got {min_size!r}")
        items = _regions(u, labels, min_size)
    items.sort(key=lambda item: (-item.score, item.index))
    return items if top is None else items[:top]


def _regions(u: np.ndarray, labels: Any, min_size: int) -> list[Uncertain]:
    from skimage.measure import label as connected
    from skimage.measure import regionprops

    if labels is None:
        mask = u >= 0.5
    else:
        lab = np.asarray(labels)
        if lab.shape != u.shape:
            raise ValueError(
                f"labels of shape {lab.shape} do not match the uncertainty map {u.shape}"
            )
        mask = lab > 0
    regions = regionprops(connected(mask), intensity_image=u)
    return [
        Uncertain(
            int(r.label),
            float(r.intensity_mean),
            tuple(int(v) for v in r.bbox),
            tuple(float(v) for v in r.centroid),
        )
        for r in regions
        if r.area >= min_size
    ]


def review_text(items: list[Uncertain], by: str = "slice") -> str:
    """``"review: slice 12 (0.41), slice 3 (0.38)"`` (empty when there is nothing)."""
    if not items:
        return ""
    return "review: " + ", ".join(item.describe(by) for item in items)
