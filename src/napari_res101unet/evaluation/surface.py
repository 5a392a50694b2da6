"""Surface distances in physical units: Dice, HD95 and ASSD per case, as MONAI computes them.

The definitions are those of MONAI's ``compute_hausdorff_distance(..., percentile=95,
spacing=...)`` and ``compute_average_surface_distance(..., symmetric=True,
spacing=...)`` (``monai.metrics.utils.get_mask_edges`` / ``get_surface_distance``),
rebuilt on SciPy so that MONAI is not needed at run time (a test compares the two):

* **Surface**: ``mask ^ binary_erosion(mask)`` with SciPy's default structuring element
  (face neighbours) and pixels outside the image counting as background, so a mask
  touching the image border has a surface there.
* **Distances**: from each surface pixel of one mask to the nearest surface pixel of the
  other, Euclidean, with pixel coordinates scaled by ``spacing`` (a KD-tree, exact).
* **HD95**: the larger of the two directed 95th percentiles (linear interpolation,
  as ``torch.quantile``); **ASSD**: the mean of both directions' distances pooled
  (not the mean of the two means).
* **Dice**: ``2 |P & T| / (|P| + |T|)`` of the foreground.

Where MONAI returns NaN or infinity we return finite values and say why in ``empty``:
both masks empty -> Dice 1, HD95 0, ASSD 0 (``empty="both"``; MONAI: NaN); one mask
empty -> Dice 0 and HD95 = ASSD = the image's physical diagonal, the largest distance
it holds (``empty="prediction"`` or ``"truth"``; MONAI: infinity).

Label images are scored as their foreground (``labels > 0``): instance maps and binary
masks alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ._objects import check_labels, check_pair

PERCENTILE = 95.0


def surface_scores(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None
) -> dict:
    """Dice, HD95 and ASSD of one case.

    Parameters
    ----------
    pred, truth : (Y, X) or (Z, Y, X) ndarray of bool or non-negative int
        Label images of the same shape; their foreground (``> 0``) is scored.
    spacing : sequence of float, optional
        Pixel size per axis (e.g. mm), in the arrays' axis order; default 1 (pixels).

    Returns
    -------
    dict
        ``dice``, ``hd95``, ``assd`` (in the unit of ``spacing``) and ``empty``
        (None, ``"prediction"``, ``"truth"`` or ``"both"``).

    Raises
    ------
    ValueError
        When the shapes differ, or ``spacing`` does not give one positive finite value
        per axis.
    """
    check_pair(pred, truth)
    p = check_labels(pred, "prediction") > 0
    t = check_labels(truth, "truth") > 0
    spacing = check_spacing(spacing, p.ndim)
    both = int(np.count_nonzero(p & t))
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(t))
    dice = 2 * both / total if total else 1.0
    if not (p.any() and t.any()):
        empty = "both" if not total else ("prediction" if not p.any() else "truth")
        far = 0.0 if empty == "both" else physical_diagonal(p.shape, spacing)
        return {"dice": dice, "hd95": far, "assd": far, "empty": empty}
    to_truth, to_pred = surface_distances(p, t, spacing)
    hd95 = max(_percentile(to_truth), _percentile(to_pred))
    assd = float(np.concatenate([to_truth, to_pred]).mean())
    return {"dice": dice, "hd95": hd95, "assd": assd, "empty": None}


def surface_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(pred -> truth, truth -> pred)``: each surface pixel's distance to the other surface.

    Both masks must hold foreground. Works on the bounding box of both (plus one pixel),
    as MONAI crops them.
    """
    box = ndimage.find_objects((pred | truth).astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    edges = [_surface(m[box]) for m in (pred, truth)]
    points = [np.argwhere(e) * spacing for e in edges]
    to_truth = cKDTree(points[1]).query(points[0])[0]
    to_pred = cKDTree(points[0]).query(points[1])[0]
    return to_truth, to_pred


def _surface(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a face neighbour outside it (outside the array counts)."""
    return mask ^ ndimage.binary_erosion(mask, border_value=0)


def _percentile(distances: np.ndarray) -> float:
    return float(np.percentile(distances, PERCENTILE))


def check_spacing(spacing: Sequence[float] | None, ndim: int) -> np.ndarray:
    """``spacing`` as ``ndim`` positive floats (1 each when None)."""
    if spacing is None:
        return np.ones(ndim)
    values = np.asarray(spacing, dtype=float).ravel()
    if values.size != ndim or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            f"spacing must be {ndim} positive numbers (one per axis), got {list(spacing)}"
        )
    return values


def physical_diagonal(shape: tuple[int, ...], spacing: np.ndarray) -> float:
    """The largest distance between two pixel centres of the image, in spacing units."""
    return float(np.sqrt(np.sum(((np.asarray(shape) - 1) * spacing) ** 2)))


def mean_surface_scores(cases: Sequence[dict]) -> dict:
    """``dice``, ``hd95``, ``assd``: means over ``cases`` (each from :func:`surface_scores`)."""
    if not cases:
        return {"dice": 1.0, "hd95": 0.0, "assd": 0.0}
    return {k: float(np.mean([c[k] for c in cases])) for k in ("dice", "hd95", "assd")}
