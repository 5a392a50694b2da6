"""Segmentation metrics on integer label arrays (pure numpy).

Conventions: label 0 is background. Binary scores (``n_classes=2``) are those of the
foreground. Multi-class scores are the mean over foreground classes that occur in the
prediction or the target. A class absent from both scores 1.0 (nothing to get wrong).
``ignore_index`` pixels of the target are left out everywhere.
"""

from __future__ import annotations

import numpy as np

MAX_CLASSES = 4096
"""Largest class count scored (the confusion matrix is ``n_classes**2`` counts)."""


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, n_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """``(n_classes, n_classes)`` counts, rows = target class, columns = predicted class."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    if not 1 <= n_classes <= MAX_CLASSES:
        raise ValueError(f"n_classes must be 1..{MAX_CLASSES}, got {n_classes}")
    keep = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    t = target[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    for name, arr in (("target", t), ("prediction", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise ValueError(
                f"{name} has label {int(arr.max())} outside 0..{n_classes - 1} "
                f"(n_classes={n_classes})"
            )
    return np.bincount(t * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)


def _classes(pred, target, n_classes):
    if n_classes is None:
        largest = int(max(np.max(pred, initial=0), np.max(target, initial=0)))
        if largest >= MAX_CLASSES:
            raise ValueError(
                f"the labels hold the value {largest}: an instance mask, not class indices "
                f"(at most {MAX_CLASSES} classes); binarise it (labels > 0) or pass n_classes"
            )
        n_classes = largest + 1
    return max(n_classes, 2)


def scores_from_confusion(cm: np.ndarray) -> dict:
    """IoU, Dice and accuracy (overall and per class) from a confusion matrix."""
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    union = tp + fp + fn
    iou = np.where(union > 0, tp / np.maximum(union, 1), 1.0)
    dice = np.where(union > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 1.0)
    total = cm.sum()
    present = union[1:] > 0
    fg = slice(1, None)

    def mean(values: np.ndarray) -> float:
        return float(values[fg][present].mean()) if present.any() else 1.0

    return {
        "iou": mean(iou),
        "dice": mean(dice),
        "accuracy": float(tp.sum() / total) if total else 1.0,
        "per_class_iou": iou.tolist(),
        "per_class_dice": dice.tolist(),
    }


def segmentation_scores(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    n_classes: int | None = None,
    ignore_index: int | None = None,
) -> dict:
    """IoU, Dice, pixel accuracy and their per-class values for one prediction."""
    n = _classes(pred, target, n_classes)
    return scores_from_confusion(confusion_matrix(pred, target, n, ignore_index))


def iou(pred, target, *, n_classes: int | None = None, ignore_index: int | None = None) -> float:
    """Intersection over union (Jaccard) of the foreground (mean over classes)."""
    return segmentation_scores(pred, target, n_classes=n_classes, ignore_index=ignore_index)["iou"]


def dice(pred, target, *, n_classes: int | None = None, ignore_index: int | None = None) -> float:
    """Dice coefficient (F1) of the foreground (mean over classes)."""
    return segmentation_scores(pred, target, n_classes=n_classes, ignore_index=ignore_index)[
        "dice"
    ]


def pixel_accuracy(pred, target, *, ignore_index: int | None = None) -> float:
    """Fraction of (non-ignored) pixels labelled correctly."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    keep = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    n = int(keep.sum())
    return float((pred[keep] == target[keep]).sum() / n) if n else 1.0
