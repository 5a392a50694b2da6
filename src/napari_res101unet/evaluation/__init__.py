"""Scores: of a model on labelled images, and of label files against ground truth.

Modules: :mod:`.pixel` (IoU, Dice, accuracy from a confusion matrix; numpy only),
:mod:`.objects` (GlaS object F1, Dice and Hausdorff, per image and pooled) with
:mod:`.matching` (IoU matching at 0.5:0.95, StarDist's statistics), :mod:`.surface`
(Dice, HD95, ASSD in mm, as MONAI), :mod:`.files` (:func:`score_files`: any tool's label
files against masks) and :mod:`.score_model` (:func:`evaluate`: segment labelled images
with a model and score them). numpy/SciPy only on import; torch is imported when
:func:`evaluate` is first used.
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
    "object_scores": "objects",
    "object_tally": "objects",
    "pooled_scores": "objects",
    "surface_scores": "surface",
    "score_files": "files",
    "pair_label_files": "files",
}
__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .files import pair_label_files, score_files
    from .objects import object_scores, object_tally, pooled_scores
    from .pixel import (
        confusion_matrix,
        dice,
        iou,
        pixel_accuracy,
        scores_from_confusion,
        segmentation_scores,
    )
    from .score_model import evaluate
    from .surface import surface_scores
