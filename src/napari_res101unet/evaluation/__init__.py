"""Scores: of a model on labelled images, and of label files against ground truth.

Modules: :mod:`.pixel` (IoU, Dice, accuracy from a confusion matrix; numpy only) and
:mod:`.score_model` (:func:`evaluate`: segment labelled images with a model and score
them). numpy only on import; torch is imported when :func:`evaluate` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

_LAZY = {
    "evaluate": "score_model",
    "confusion_matrix": "pixel",
    "scores_from_confusion": "pixel",
    "segmentation_scores": "pixel",
    "iou": "pixel",
    "dice": "pixel",
    "pixel_accuracy": "pixel",
}
__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .pixel import (
        confusion_matrix,
        dice,
        iou,
        pixel_accuracy,
        scores_from_confusion,
        segmentation_scores,
    )
    from .score_model import evaluate
