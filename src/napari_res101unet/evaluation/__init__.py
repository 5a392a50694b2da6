"""Scores: of a model on labelled images, and of label files against ground truth.

Modules: :mod:`.pixel` (IoU, Dice, accuracy from a confusion matrix; numpy only),
:mod:`.objects` (GlaS object F1, Dice and Hausdorff, per image and pooled) with
:mod:`.matching` (IoU matching at 0.5:0.95, StarDist's statistics), :mod:`.surface`
(Dice, HD95, ASSD in mm, as MONAI), :mod:`.files` (:func:`score_files`: any tool's label
files against masks) and :mod:`.score_model` (:func:`evaluate`: segment labelled images
with a model and score them); :mod:`._objects` (label images as sets of objects, sparse
overlaps) and :mod:`._hausdorff` (object-to-object distances) serve the object scores.
numpy/SciPy only on import; torch is imported when :func:`evaluate` is first used.
"""

from __future__ import annotations

from .._lazy import lazy_attributes
from .pixel import (
    confusion_matrix,
    dice,
    iou,
    pixel_accuracy,
    scores_from_confusion,
    segmentation_scores,
)

_LATER = {
    "evaluate": "score_model",  # imports torch
    "object_scores": "objects",
    "object_tally": "objects",
    "pooled_scores": "objects",
    "surface_scores": "surface",
    "score_files": "files",  # reads files (io)
    "pair_label_files": "files",
}
"""Names imported from their module on first use."""

__all__ = [
    "confusion_matrix",
    "dice",
    "iou",
    "pixel_accuracy",
    "scores_from_confusion",
    "segmentation_scores",
    *_LATER,
]
__getattr__ = lazy_attributes(__name__, _LATER)
