"""Object-level scores: the GlaS challenge's object F1, Dice and Hausdorff, and IoU matching.

Definitions (Sirinukunwattana et al., Med. Image Anal. 35, 2017, and the challenge's
evaluation code), for segmented objects ``S_i`` and ground-truth objects ``G_j``:

* **Object F1**: ``S_i`` is a true positive when it covers more than 50 % of the
  ground-truth object it overlaps most (``|S_i & G*| / |G*| > 0.5``); ``FP = n_S - TP``,
  ``FN = n_G - TP``, ``F1 = 2 TP / (2 TP + FP + FN)``.
* **Object Dice**: ``1/2 [sum_i w_i Dice(S_i, G*(S_i)) + sum_j v_j Dice(G_j, S*(G_j))]``
  with ``w_i = |S_i| / sum_k |S_k|`` and ``v_j = |G_j| / sum_k |G_k|``, where ``G*(S_i)`` is
  the ground-truth object ``S_i`` overlaps most (Dice 0 when it overlaps none) and
  ``S*(G_j)`` likewise.
* **Object Hausdorff**: the same weighted half-sum of Hausdorff distances (pixels, over
  all pixels of the two objects); an object that overlaps nothing takes its distance to
  the nearest object of the other side (the smallest Hausdorff distance).

"Overlaps most" breaks ties to the smallest id, as the challenge code does.

**Pooling over a set** (as the challenge ranks methods): F1 from the summed counts,
``F1 = 2 sum TP / (2 sum TP + sum FP + sum FN)``; Dice and Hausdorff with the weights over
all objects of all images,
``D = 1/2 [sum_n sum_i |S_ni| D(S_ni) / sum_n sum_i |S_ni| + sum_n sum_j |G_nj| D(G_nj) /
sum_n sum_j |G_nj|]``, so a large gland weighs more than a small one wherever it is;
this is not the mean of the per-image scores.

**Empty sides** (the challenge code leaves them undefined): with no object on either side
F1 and Dice are 1 and Hausdorff 0; an unmatched object with no object at all on the
other side of its image takes that image's diagonal (the largest distance in it); and
when one side has no objects (in the image, or pooled: in the whole set) the half-sum
is the other side's term alone (Dice 0, Hausdorff the weighted diagonal). So every score
is finite.

Label images become objects as :func:`._objects.as_objects` says: a binary mask by its
8-connected (3D: 26-connected) components, an instance map by its ids; the result's
``objects_from`` names both sides' rule. IoU matching is in :mod:`.matching`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from ._hausdorff import ObjectGeometry, hausdorff, nearest, partner_directed
from ._objects import Objects, as_objects, best_partner, check_pair, diagonal, pair_counts
from .matching import THRESHOLDS, MatchTally, match_tallies, pooled_matching


@dataclass(frozen=True)
class GlasTally:
    """The sums behind the GlaS scores of one image or, added with ``+``, of a set.

    ``dice_pred`` is ``sum_i |S_i| Dice(S_i, G*(S_i))``, ``area_pred`` is ``sum_i |S_i|``,
    and so on for the truth side and the Hausdorff distances.
    """

    n_pred: int = 0
    n_true: int = 0
    tp: int = 0
    area_pred: int = 0
    area_true: int = 0
    dice_pred: float = 0.0
    dice_true: float = 0.0
    hausdorff_pred: float = 0.0
    hausdorff_true: float = 0.0

    def __add__(self, other: GlasTally) -> GlasTally:
        return GlasTally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def scores(self) -> dict:
        """``object_f1``, ``object_dice``, ``object_hausdorff`` and the counts."""
        fp, fn = self.n_pred - self.tp, self.n_true - self.tp
        denominator = 2 * self.tp + fp + fn
        return {
            "object_f1": 2 * self.tp / denominator if denominator else 1.0,
            "object_dice": self._half_sum(self.dice_pred, self.dice_true, 1.0),
            "object_hausdorff": self._half_sum(self.hausdorff_pred, self.hausdorff_true, 0.0),
            "tp": self.tp,
            "fp": fp,
            "fn": fn,
            "n_pred": self.n_pred,
            "n_true": self.n_true,
        }

    def _half_sum(self, pred: float, true: float, empty: float) -> float:
        terms = [s / a for s, a in ((pred, self.area_pred), (true, self.area_true)) if a > 0]
        return float(np.mean(terms)) if terms else empty


@dataclass(frozen=True)
class ObjectTally:
    """Everything one image adds to a set's object scores."""

    glas: GlasTally
    matching: tuple[MatchTally, ...]
    objects_from: dict

    def scores(self) -> dict:
        """The image's GlaS scores, its matching per threshold and ``objects_from``."""
        return {
            **self.glas.scores(),
            "matching": [t.scores() for t in self.matching],
            "objects_from": self.objects_from,
        }


def object_tally(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    objects_from: str = "auto",
    thresholds: Sequence[float] = THRESHOLDS,
) -> ObjectTally:
    """The object sums of one prediction against its ground truth.

    Parameters
    ----------
    pred, truth : (Y, X) or (Z, Y, X) ndarray of bool or non-negative int
        Binary masks or instance maps of the same shape.
    objects_from : {"auto", "components", "instances"}
        How label images become objects (see :func:`._objects.as_objects`).
    thresholds : sequence of float
        IoU thresholds of the matching, in ``(0, 1]``.

    Raises
    ------
    ValueError
        When the shapes differ (naming both), or for invalid labels or thresholds.
    """
    check_pair(pred, truth)
    s = as_objects(pred, name="prediction", objects_from=objects_from)
    g = as_objects(truth, name="truth", objects_from=objects_from)
    i_s, i_g, shared = pair_counts(s, g)
    return ObjectTally(
        glas=glas_tally(s, g, (i_s, i_g, shared)),
        matching=tuple(match_tallies(i_s, i_g, shared, s.areas, g.areas, thresholds)),
        objects_from={"prediction": s.source, "truth": g.source},
    )


def object_scores(pred: np.ndarray, truth: np.ndarray, **options) -> dict:
    """GlaS object F1, Dice, Hausdorff and IoU matching of one image.

    Takes the arguments of :func:`object_tally`. Returns ``object_f1``, ``object_dice``,
    ``object_hausdorff`` (pixels), ``tp``, ``fp``, ``fn``, ``n_pred``, ``n_true``,
    ``matching`` (a dict per threshold, see :mod:`.matching`) and ``objects_from``.
    """
    return object_tally(pred, truth, **options).scores()


def pooled_scores(tallies: Iterable[ObjectTally]) -> dict:
    """The scores of a set, pooled as the challenge does (see the module notes).

    Returns ``object_f1``, ``object_dice``, ``object_hausdorff``, the summed counts and
    ``matching`` (counts pooled per threshold).
    """
    tallies = list(tallies)
    glas = sum((t.glas for t in tallies), GlasTally())
    return {**glas.scores(), "matching": pooled_matching([t.matching for t in tallies])}


def glas_tally(s: Objects, g: Objects, pairs: tuple | None = None) -> GlasTally:
    """The :class:`GlasTally` of segmented objects ``s`` against ground truth ``g``."""
    i_s, i_g, shared = pair_counts(s, g) if pairs is None else pairs
    best_g, shared_s = best_partner(i_s, i_g, shared, s.n)
    best_s, shared_g = best_partner(i_g, i_s, shared, g.n)
    covered = (best_g[1:] > 0) & (2 * shared_s[1:] > g.areas[best_g[1:]])
    hd_s, hd_g = _hausdorff_terms(s, g, best_g, shared_s, best_s)
    return GlasTally(
        n_pred=s.n,
        n_true=g.n,
        tp=int(np.count_nonzero(covered)),
        area_pred=int(s.areas[1:].sum()),
        area_true=int(g.areas[1:].sum()),
        dice_pred=_weighted_dice(s.areas, g.areas, best_g, shared_s),
        dice_true=_weighted_dice(g.areas, s.areas, best_s, shared_g),
        hausdorff_pred=float(s.areas[1:] @ hd_s),
        hausdorff_true=float(g.areas[1:] @ hd_g),
    )


def _weighted_dice(areas, other_areas, partner, shared) -> float:
    """``sum_i |A_i| Dice(A_i, partner_i)`` (Dice 0 without a partner)."""
    a, p, k = areas[1:], partner[1:], shared[1:]
    dice = np.where(p > 0, 2 * k / (a + other_areas[p]), 0.0)
    return float(a @ dice)


def _hausdorff_terms(s: Objects, g: Objects, best_g, shared_s, best_s):
    """Per-object Hausdorff distances of both sides (see the module notes)."""
    if s.n == 0 or g.n == 0:
        far = diagonal(s.labels.shape)
        return np.full(s.n, far), np.full(g.n, far)
    identical = (shared_s == s.areas) & (shared_s == g.areas[best_g])
    identical[0] = False
    if identical[1:].all() and (best_s[1:] > 0).all():
        return np.zeros(s.n), np.zeros(g.n)  # the same objects on both sides
    forward, exact_s = partner_directed(s, g, best_g)
    backward, exact_g = partner_directed(g, s, best_s)
    fast_s = exact_s & (best_s[best_g] == np.arange(s.n + 1)) & exact_g[best_g]
    fast_g = exact_g & (best_g[best_s] == np.arange(g.n + 1)) & exact_s[best_s]
    hd_s = np.where(fast_s | identical, np.maximum(forward, backward[best_g]), 0.0)[1:]
    hd_g = np.where(fast_g | identical[best_s], np.maximum(backward, forward[best_s]), 0.0)[1:]
    slow_s = [i for i in range(1, s.n + 1) if best_g[i] and not (fast_s[i] or identical[i])]
    slow_g = [
        j for j in range(1, g.n + 1) if best_s[j] and not (fast_g[j] or identical[best_s[j]])
    ]
    unmatched_s = np.flatnonzero(best_g[1:] == 0) + 1
    unmatched_g = np.flatnonzero(best_s[1:] == 0) + 1
    if slow_s or slow_g or unmatched_s.size or unmatched_g.size:
        gs, gg = ObjectGeometry(s), ObjectGeometry(g)
        for i in slow_s:
            hd_s[i - 1] = hausdorff(gs, i, gg, int(best_g[i]))
        for j in slow_g:
            hd_g[j - 1] = hausdorff(gs, int(best_s[j]), gg, j)
        hd_s[unmatched_s - 1] = nearest(gs, unmatched_s, gg)
        hd_g[unmatched_g - 1] = nearest(gg, unmatched_g, gs)
    return hd_s, hd_g
