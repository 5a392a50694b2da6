"""Object matching at IoU thresholds, as StarDist's ``matching`` reports it.

For each threshold ``t``, predicted and true objects are paired one to one so that the
number of pairs with IoU ``>= t`` is largest (ties: the largest IoU sum), the optimal
matching that StarDist computes with the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`). Only overlapping pairs are candidates
(sparse), and above IoU 0.5 an object has at most one partner, so the assignment is
solved only on the rare groups of objects that compete for a partner (at ``t <= 0.5``).

Per threshold: ``tp``, ``fp = n_pred - tp``, ``fn = n_true - tp``, ``precision =
tp / (tp + fp)``, ``recall = tp / (tp + fn)``, ``f1 = 2 tp / (2 tp + fp + fn)``,
``accuracy = tp / (tp + fp + fn)``, ``mean_matched_iou`` (StarDist's
``mean_matched_score``: the mean IoU of the matched pairs), ``mean_true_iou``
(``mean_true_score``: their IoU sum over ``n_true``) and ``panoptic_quality`` (IoU sum
over ``tp + fp / 2 + fn / 2``, Kirillov et al. 2019). As in StarDist, precision, recall,
F1 and accuracy are 0 when ``tp`` is 0, also when both images are empty; over a set the
counts and the IoU sum are pooled first (StarDist's ``matching_dataset``,
``by_image=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))
"""IoU thresholds 0.5, 0.55, ..., 0.95 (StarDist's and the DSB 2018's range)."""


@dataclass(frozen=True)
class MatchTally:
    """Counts at one IoU threshold; ``+`` pools them over images."""

    thresh: float
    tp: int = 0
    n_true: int = 0
    n_pred: int = 0
    iou_sum: float = 0.0

    def __add__(self, other: MatchTally) -> MatchTally:
        if other.thresh != self.thresh:
            raise ValueError(f"cannot pool IoU thresholds {self.thresh} and {other.thresh}")
        values = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return MatchTally(**{**values, "thresh": self.thresh})

    def scores(self) -> dict:
        """The StarDist statistics of these counts (see the module notes)."""
        tp, fp, fn = self.tp, self.n_pred - self.tp, self.n_true - self.tp

        def ratio(num: float, den: float) -> float:
            return float(num / den) if tp > 0 and den > 0 else 0.0

        return {
            "thresh": self.thresh,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "n_true": self.n_true,
            "n_pred": self.n_pred,
            "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "accuracy": ratio(tp, tp + fp + fn),
            "mean_matched_iou": ratio(self.iou_sum, tp),
            "mean_true_iou": ratio(self.iou_sum, self.n_true),
            "panoptic_quality": ratio(self.iou_sum, tp + fp / 2 + fn / 2),
        }


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """``thresholds`` as a tuple of floats in ``(0, 1]`` (ValueError otherwise)."""
    values = tuple(float(t) for t in np.atleast_1d(np.asarray(thresholds, dtype=float)))
    bad = [t for t in values if not 0 < t <= 1]
    if not values or bad:
        raise ValueError(f"IoU thresholds must be in (0, 1], got {list(thresholds)}")
    return values


def match_tallies(
    ip: np.ndarray,
    it: np.ndarray,
    shared: np.ndarray,
    areas_pred: np.ndarray,
    areas_true: np.ndarray,
    thresholds: Sequence[float],
) -> list[MatchTally]:
    """One :class:`MatchTally` per threshold from the sparse overlaps of two object sets.

    Parameters
    ----------
    ip, it, shared : (K,) ndarray
        Predicted id, true id and shared pixel count of every overlapping pair.
    areas_pred, areas_true : (n + 1,) ndarray
        Pixels per id (index 0: background).
    thresholds : sequence of float
        IoU thresholds in ``(0, 1]``.
    """
    iou = shared / (areas_pred[ip] + areas_true[it] - shared)
    n_pred, n_true = len(areas_pred) - 1, len(areas_true) - 1
    out = []
    for t in check_thresholds(thresholds):
        matched = _matched_ious(ip, it, iou, t)
        out.append(MatchTally(t, len(matched), n_true, n_pred, float(matched.sum())))
    return out


def _matched_ious(ip: np.ndarray, it: np.ndarray, iou: np.ndarray, t: float) -> np.ndarray:
    """IoUs of the optimal one-to-one matching among the pairs with IoU ``>= t``."""
    keep = iou >= t
    ip, it, iou = ip[keep], it[keep], iou[keep]
    clash_p = np.bincount(ip)[ip] > 1 if ip.size else np.zeros(0, bool)
    clash_t = np.bincount(it)[it] > 1 if it.size else np.zeros(0, bool)
    if not (clash_p.any() or clash_t.any()):
        return iou
    up, lp = np.unique(ip, return_inverse=True)
    ut, lt = np.unique(it, return_inverse=True)
    graph = coo_matrix((np.ones(len(lp)), (lp, len(up) + lt)), shape=(len(up) + len(ut),) * 2)
    _, component = connected_components(graph, directed=False)
    group = component[lp]
    matched = []
    for g in np.unique(group):
        sel = group == g
        matched.append(_assign(lp[sel], lt[sel], iou[sel]))
    return np.concatenate(matched)


def _assign(lp: np.ndarray, lt: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Hungarian matching of one group: most pairs first, then the largest IoU sum."""
    if len(iou) == 1:
        return iou
    rows, r = np.unique(lp, return_inverse=True)
    cols, c = np.unique(lt, return_inverse=True)
    gain = np.zeros((len(rows), len(cols)))
    gain[r, c] = 1 + iou / (2 * min(len(rows), len(cols)))
    score = np.zeros_like(gain)
    score[r, c] = iou
    ri, ci = linear_sum_assignment(-gain)
    ok = gain[ri, ci] > 0
    return score[ri[ok], ci[ok]]


def pooled_matching(tallies: Sequence[Sequence[MatchTally]]) -> list[dict]:
    """Per threshold, the scores of the counts pooled over images (``tallies[image][t]``)."""
    if not tallies:
        return []
    pooled = list(tallies[0])
    for image in tallies[1:]:
        pooled = [a + b for a, b in zip(pooled, image)]
    return [t.scores() for t in pooled]
