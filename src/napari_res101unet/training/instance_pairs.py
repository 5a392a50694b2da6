"""Instance-aware training (``train(..., instances=True)``): labels become the targets of
an instance head, and thin classes are weighted so they are learned.

Heads (``TrainSettings.instance_head``): ``boundary``, background / interior / contour
(:func:`~.instance_targets.boundary_classes`); ``distance``, background and ``n`` bins of
the distance to the object's boundary normalised per object
(:func:`~.instance_targets.distance_targets`; bin ``k`` holds ``(k-1)/n < d <= k/n``), as
the deep watershed transform (Bai & Urtasun 2017) learns energy levels as classes: a
softmax head like any other, so inference, tiling and validation need nothing new.

Targets are computed on each WHOLE label image (each slice of a stack), before patches are
cut, scaled, flipped or rotated: an object cut by a patch edge keeps its true contour (the
edge of a patch is never taken for an object's rim), and the patch sampler, augmentation
and validation then see an ordinary 3-class label map. The image edge is not a contour
either (:func:`~.instance_targets.boundary_classes` pads by replication). Targets are made
at the labels' own pixel size, before pairs of another spacing are resampled to the
model's (nearest neighbour, as any label map).

Objects: an instance map's ids, or the 8-connected components of a binary mask (decided
per pair by :func:`~.instance_targets.looks_like_instances`; a map of only two touching
objects reads as a mask, and they are then one object). Pixels marked ``ignore_index``
stay unlabelled.
"""

from __future__ import annotations

import numpy as np

from ..config import INSTANCE_CLASS_NAMES, INSTANCE_TRAINING
from ..preprocess.pairs import IGNORE, CheckedPair, value_counts
from .instance_targets import boundary_classes, distance_targets

__all__ = ["class_weights", "head_class_names", "instance_pairs", "instance_targets"]


def head_class_names(head: str) -> list[str]:
    """The class names of an instance head, background first."""
    if head == "distance":
        n = int(INSTANCE_TRAINING["distance_bins"])
        return ["background"] + [f"distance {k}/{n}" for k in range(1, n + 1)]
    return list(INSTANCE_CLASS_NAMES)


def instance_targets(objects: np.ndarray, head: str) -> np.ndarray:
    """The class targets of ``head`` for a label image's objects (int32, same shape)."""
    if head == "distance":
        n = int(INSTANCE_TRAINING["distance_bins"])
        foreground, distance = distance_targets(objects)
        bins = np.ceil(distance * n).clip(1, n).astype(np.int32)
        return np.where(foreground > 0, bins, 0).astype(np.int32)
    return boundary_classes(objects, int(INSTANCE_TRAINING["contour_width"])).astype(np.int32)


def instance_pairs(
    checked: list[CheckedPair], ignore_index: int | None, head: str, what: str = "pairs"
) -> list[CheckedPair]:
    """The pairs with their labels replaced by the targets of ``head`` (see
    :func:`instance_targets`; ``ignore_index`` pixels kept as they are).

    Raises
    ------
    ValueError
        For labels left on disk (the targets need whole label images in memory) or a pair
        with no object.
    """
    from .lazy_pairs import is_lazy

    out = []
    for pair in checked:
        if is_lazy(pair.labels):
            raise ValueError(
                f"instances=True needs the labels of {what} in memory ({pair.name} is read "
                "from disk): pass arrays, or leave out --from-disk"
            )
        labels = np.asarray(pair.labels)
        unlabelled = labels == ignore_index if ignore_index is not None else None
        objects = labels if unlabelled is None else np.where(unlabelled, 0, labels)
        if not objects.any():
            raise ValueError(
                f"{pair.name} holds no object: instance training needs objects in every pair"
            )
        targets = instance_targets(objects, head)  # int32: holds any ignore_index
        if unlabelled is not None:
            targets[unlabelled] = ignore_index
        kept = targets if unlabelled is None else targets[~unlabelled]
        values, counts = value_counts(kept)
        out.append(CheckedPair(pair.slices, targets, counts, pair.index, pair.name, values))
    return out


def class_weights(items: list, classes: int = len(INSTANCE_CLASS_NAMES)) -> list[float]:
    """Cross-entropy weight per class by median-frequency balancing over the prepared
    training labels: ``median(freq) / freq[k]``, clipped to ``[1 / cap, cap]`` with ``cap``
    :data:`~napari_res101unet.config.INSTANCE_TRAINING` ``["max_class_weight"]``; a class
    absent from the labels gets 1.

    ``items``: :class:`~napari_res101unet.preprocess.pairs.Prepared` (``labels`` ``(N, Y,
    X)``, :data:`IGNORE` where unlabelled), only their used ``slices`` counted.
    """
    counts = np.zeros(classes, np.int64)
    for item in items:
        for s in item.slices:
            lab = np.asarray(item.labels[s])
            lab = lab[(lab != IGNORE) & (lab >= 0) & (lab < classes)]
            counts += np.bincount(lab.ravel().astype(np.int64), minlength=classes)[:classes]
    present = counts > 0
    if not present.any():
        return [1.0] * classes
    freq = counts / counts.sum()
    cap = float(INSTANCE_TRAINING["max_class_weight"])
    weights = np.ones(classes)
    weights[present] = np.clip(np.median(freq[present]) / freq[present], 1.0 / cap, cap)
    return [round(float(w), 4) for w in weights]
