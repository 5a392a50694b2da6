"""Scores: of a model on labelled images, and of label files against ground truth.

Modules: :mod:`.pixel` (IoU, Dice, accuracy from a confusion matrix; numpy only) and
:mod:`.score_model` (:func:`evaluate`: segment labelled images with a model and score
them). numpy only on import; torch is imported when :func:`evaluate` is first used.
"""

from __future__ import annotations

from typing import Any

from .pixel import (
    confusion_matrix,
    dice,
    iou,
    pixel_accuracy,
    scores_from_confusion,
    segmentation_scores,
)

__all__ = [
    "confusion_matrix",
    "dice",
    "evaluate",
    "iou",
    "pixel_accuracy",
    "scores_from_confusion",
    "segmentation_scores",
]


def __getattr__(name: str) -> Any:
    if name == "evaluate":  # imports torch: only when asked for
        from .score_model import evaluate

        return evaluate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
