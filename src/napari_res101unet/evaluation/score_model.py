"""Scoring a model on labelled images: IoU, Dice and accuracy, pooled and per image."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..config import SegmentSettings, settings_with
from ..inference.segment import run_segmentation
from ..model import model_spec
from ..preprocess.pairs import check_label_bound, check_pairs
from .pixel import confusion_matrix, scores_from_confusion


def evaluate(
    model: Any,
    pairs: Any,
    settings: SegmentSettings | None = None,
    *,
    ignore_index: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    objects: bool = False,
    surface: bool = False,
    spacings: Sequence[Sequence[float] | None] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Segment each image with ``model`` and score it against its labels.

    Parameters
    ----------
    model : torch.nn.Module or path
        A Res101_UNet (from :func:`build_model`, :func:`load_model` or :func:`train`) or a
        checkpoint path.
    pairs : sequence of (image, labels)
        ``image`` ``(Y, X[, C])`` or ``(Z, Y, X[, C])``; ``labels`` integer class indices
        with the image's spatial shape (a trailing image axis is channels when the image
        has one axis more than the labels).
    settings : SegmentSettings, optional
        How to segment (tiles, TTA, device...); its fields may also be given as keyword
        arguments (``device="cpu"``), which win.
    ignore_index : int, optional
        Label value of pixels left out of every score.
    progress : callable, optional
        ``progress(done, total)`` after each image.
    should_stop : callable, optional
        Checked between tiles; :class:`~napari_res101unet.Cancelled` is raised when True.
    objects : bool
        Also the GlaS object scores and IoU matching (:mod:`.objects`) of the foreground's
        8-connected components (26 in 3D) on both sides; ``ignore_index`` pixels are
        background on both sides.
    surface : bool
        Also Dice, HD95 and ASSD of the foreground per image (:mod:`.surface`), in mm
        with ``spacings`` (one per pair, None for pixels).
    spacings : sequence, optional
        Pixel size in mm of each pair's labels (for ``surface``).
    **fields
        :class:`~napari_res101unet.config.SegmentSettings` fields.

    Returns
    -------
    dict
        ``iou``, ``dice``, ``accuracy``: over all pixels of all images (from the summed
        confusion matrix; foreground-class means as in
        :mod:`~napari_res101unet.evaluation.pixel`). ``mean_iou``, ``mean_dice``,
        ``mean_accuracy``: means of the per-image scores. ``per_class``: ``[{"class",
        "name", "iou", "dice"}]`` for each foreground class. ``per_image``: ``[{"index",
        "iou", "dice", "accuracy", "pixels", "seconds"}]``. ``confusion_matrix`` (rows:
        truth, columns: prediction), ``class_names``, ``n_images``, ``settings``. With
        ``objects``/``surface``, the keys of
        :class:`~napari_res101unet.evaluation.files.ScoreSet` too (``object_f1``...,
        ``hd95_mm``, ``assd_mm``, ``per_case``), and each ``per_image`` entry its own;
        the top ``dice`` stays the pooled pixel Dice.
    """
    if isinstance(fields.get("device"), torch.device):
        fields["device"] = str(fields["device"])
    s = settings_with(SegmentSettings, settings, fields)
    if isinstance(model, (str, os.PathLike)):
        from ..registry import open_model

        model = open_model(model)
    spec = model_spec(model)
    n = spec.n_labels
    checked = check_pairs(pairs, ignore_index=ignore_index)
    check_label_bound(checked, n)
    total = np.zeros((n, n), np.int64)
    per_image = []
    extra = _extra_scores(objects, surface, spacings, len(checked))
    for done, c in enumerate(checked, start=1):
        started = time.perf_counter()
        image = c.slices[0] if c.slices.shape[0] == 1 and c.labels.shape[0] == 1 else c.slices
        result = run_segmentation(image, model, s, should_stop=should_stop, channel_axis=-1)
        cm = confusion_matrix(result.labels.reshape(c.labels.shape), c.labels, n, ignore_index)
        total += cm
        scores = scores_from_confusion(cm)
        per_image.append(_image_entry(c.index, scores, cm, time.perf_counter() - started))
        if extra is not None:
            per_image[-1].update(_add_extra(extra, result.labels, c, ignore_index, spacings))
        if progress is not None:
            progress(done, len(checked))
    summary = {**_summary(total, per_image, list(spec.class_names)), "settings": s.as_dict()}
    if extra is not None:
        known = spacings is not None and all(s is not None for s in spacings)
        summary.update({k: v for k, v in extra.summary("mm" if known else "pixel").items()
                        if k != "dice"})  # fmt: skip
    return summary


def _extra_scores(objects: bool, surface: bool, spacings, count: int):
    """The object/surface accumulator, or None when neither is asked for."""
    if not (objects or surface):
        return None
    if spacings is not None and len(spacings) != count:
        raise ValueError(f"spacings has {len(spacings)} entries for {count} pairs")
    from .files import ScoreSet

    return ScoreSet(objects=objects, surface=surface, objects_from="components")


def _add_extra(extra, labels: np.ndarray, c, ignore_index: int | None, spacings) -> dict:
    """Object/surface scores of one image's foreground (``ignore_index`` -> background)."""
    truth = np.asarray(c.labels)
    pred = np.asarray(labels).reshape(truth.shape) > 0
    keep = truth != ignore_index if ignore_index is not None else np.ones(truth.shape, bool)
    pred, truth = pred & keep, (truth > 0) & keep
    if truth.shape[0] == 1:  # a 2D image: (1, Y, X) -> (Y, X)
        pred, truth = pred[0], truth[0]
    spacing = None if spacings is None else spacings[c.index]
    if spacing is not None:
        spacing = list(spacing)[-truth.ndim :]
    names = {"index": c.index}
    return extra.add(pred, truth, spacing, names)


def _image_entry(index: int, scores: dict, cm: np.ndarray, seconds: float) -> dict:
    return {
        "index": index,
        "iou": scores["iou"],
        "dice": scores["dice"],
        "accuracy": scores["accuracy"],
        "per_class_iou": scores["per_class_iou"],
        "per_class_dice": scores["per_class_dice"],
        "pixels": int(cm.sum()),
        "seconds": round(seconds, 3),
    }


def _summary(total: np.ndarray, per_image: list[dict], names: list[str]) -> dict[str, Any]:
    pooled = scores_from_confusion(total)
    per_class = [
        {
            "class": k,
            "name": names[k] if k < len(names) else f"class {k}",
            "iou": pooled["per_class_iou"][k],
            "dice": pooled["per_class_dice"][k],
        }
        for k in range(1, total.shape[0])
    ]
    return {
        "iou": pooled["iou"],
        "dice": pooled["dice"],
        "accuracy": pooled["accuracy"],
        "mean_iou": float(np.mean([p["iou"] for p in per_image])),
        "mean_dice": float(np.mean([p["dice"] for p in per_image])),
        "mean_accuracy": float(np.mean([p["accuracy"] for p in per_image])),
        "per_class": per_class,
        "per_image": per_image,
        "confusion_matrix": total.tolist(),
        "class_names": names,
        "n_images": len(per_image),
    }
