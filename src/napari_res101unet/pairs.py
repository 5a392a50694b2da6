"""Image/label pairs: checks before anything runs, preparation, and the validation split.

Labels are class indices (0 = background, k = class k). Pixels equal to ``ignore_index``
(unlabelled, for sparse annotation) become :data:`IGNORE` internally, and so do the
pixels that padding adds around small images: neither counts in the loss or the scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .config import TRAIN_LIMITS
from .data import Normalizer, adapt_channels, as_stack, make_normalizer

IGNORE = -1
"""Internal label of pixels that count nowhere (unlabelled or padding)."""


@dataclass
class CheckedPair:
    """A pair that passed :func:`check_pairs`.

    Attributes
    ----------
    slices : (N, Y, X, C) ndarray
        The image as channels-last slices (a view; N = 1 for a 2D image).
    labels : (N, Y, X) ndarray
        The labels as given (a view).
    counts : (K,) ndarray
        Labelled pixels per class value (ignored pixels excluded).
    """

    slices: np.ndarray
    labels: np.ndarray
    counts: np.ndarray
    index: int


@dataclass
class Prepared:
    """An image ready for patch sampling or validation.

    Attributes
    ----------
    data : (N, Y, X, C) ndarray
        Raw values with the model's channel count (a view where possible).
    labels : (N, Y, X) int16 ndarray
        Class indices; :data:`IGNORE` where a pixel counts nowhere.
    normalizer : Normalizer
        Built from the whole image, exactly as inference builds it.
    slices : list of int
        The slices of ``data`` in use (the others belong to the other split or are empty).
    """

    data: np.ndarray
    labels: np.ndarray
    normalizer: Normalizer
    index: int
    slices: list[int]


def check_pairs(pairs: Any, *, ignore_index: int | None, what: str = "pairs") -> list[CheckedPair]:
    """Check a sequence of ``(image, labels)`` and return them as :class:`CheckedPair`.

    Parameters
    ----------
    pairs : sequence of (image, labels)
        ``image`` is ``(Y, X)``, ``(Y, X, C)``, ``(Z, Y, X)`` or ``(Z, Y, X, C)``; ``labels``
        has the image's spatial shape and an integer (or bool) dtype.
    ignore_index : int or None
        Label value of unlabelled pixels.

    Raises
    ------
    ValueError
        For mismatched shapes, NaN/inf in an image, negative labels, a pair without any
        labelled pixel, or an empty sequence (messages name the pair index and values).
    TypeError
        For non-integer labels or something that is not a sequence of pairs.
    """
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
    ):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
    if isinstance(pairs, np.ndarray) or not isinstance(pairs, Sequence):
        raise TypeError(
            f"{what} must be a list of (image, labels) pairs, got {type(pairs).__name__}"
        )
    if len(pairs) == 0:
        raise ValueError(f"{what} is empty; give at least one (image, labels) pair")
    return [_check_pair(pair, i, ignore_index, what) for i, pair in enumerate(pairs)]


def _check_pair(pair: Any, i: int, ignore_index: int | None, what: str) -> CheckedPair:
    if isinstance(pair, np.ndarray) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(
            f"{what}[{i}] must be an (image, labels) pair, got {type(pair).__name__}; "
            "pass a list of pairs, e.g. [(image, labels)]"
        )
    image, labels = np.asarray(pair[0]), np.asarray(pair[1])
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{what}[{i}]: labels must be an integer array (class index per pixel), got "
            f"dtype {labels.dtype}; for a 0/1 float mask use mask > 0.5"
        )
    shape_help = (
        f"{what}[{i}]: image shape {image.shape} does not match labels shape {labels.shape}; "
        "labels must be (Y, X) for a (Y, X[, C]) image or (Z, Y, X) for a (Z, Y, X[, C]) stack"
    )
    if labels.ndim not in (2, 3) or image.ndim not in (labels.ndim, labels.ndim + 1):
        raise ValueError(shape_help)
    channel_axis = -1 if image.ndim == labels.ndim + 1 else None
    try:
        view = as_stack(image, channel_axis=channel_axis, axis=0)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{what}[{i}]: {exc}") from None
    if view.spatial_shape != labels.shape:
        raise ValueError(shape_help)
    stack_labels = labels if labels.ndim == 3 else labels[np.newaxis]
    return CheckedPair(view.slices, stack_labels, _counts(stack_labels, ignore_index, i, what), i)


def _counts(labels: np.ndarray, ignore_index: int | None, i: int, what: str) -> np.ndarray:
    values = labels.ravel() if ignore_index is None else labels[labels != ignore_index]
    if values.size == 0:
        raise ValueError(
            f"{what}[{i}] has no labelled pixel (all are ignore_index={ignore_index}); "
            "label some pixels or leave the pair out"
        )
    low = int(values.min())
    if low < 0:
        allowed = "" if ignore_index is None else f" (ignore_index is {ignore_index})"
        raise ValueError(f"{what}[{i}] has label {low}; labels must be >= 0{allowed}")
    return np.bincount(values.astype(np.int64, copy=False))


def resolve_classes(
    checked: list[CheckedPair], classes: int | None, ignore_index: int | None
) -> int:
    """The number of classes: ``classes`` when given (checked against the labels), else
    inferred from the largest label (at least 2).

    Raises
    ------
    ValueError
        For a label value ``>= classes``, labels without any foreground, an inferred class
        count that looks like an instance or 0/255 mask, or an ``ignore_index`` that is a
        class index.
    """
    total = np.zeros(max(len(c.counts) for c in checked), np.int64)
    for c in checked:
        total[: len(c.counts)] += c.counts
    if total[1:].sum() == 0:
        raise ValueError(
            "the labels hold no foreground at all (every labelled pixel is 0); "
            "paint at least one object"
        )
    if classes is not None:
        check_label_bound(checked, classes)
    else:
        classes = _infer_classes(total)
    if ignore_index is not None and 0 <= ignore_index < classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a class label (classes 0..{classes - 1}); "
            "mark unlabelled pixels with a value outside the classes, e.g. 255 or -1"
        )
    return classes


def check_label_bound(checked: list[CheckedPair], classes: int, what: str = "pairs") -> None:
    """Raise ValueError naming the pair when a label value is ``>= classes``."""
    for c in checked:
        if len(c.counts) > classes:
            raise ValueError(
                f"{what}[{c.index}] has label {len(c.counts) - 1}, beyond classes={classes} "
                f"(allowed label values: 0..{classes - 1}); raise classes or fix the labels"
            )


def _infer_classes(total: np.ndarray) -> int:
    classes = max(len(total), 2)
    limit = TRAIN_LIMITS["max_auto_classes"]
    missing = [k for k in range(1, len(total)) if total[k] == 0]
    if classes > limit or missing:
        used = np.flatnonzero(total)
        shown = ", ".join(map(str, used[:8])) + (", ..." if len(used) > 8 else "")
        raise ValueError(
            f"the labels use the values {{{shown}}} (largest {len(total) - 1}); this looks "
            "like an instance or 0/255 mask, not class indices. Binarise it (labels > 0), "
            f"or pass classes={classes} explicitly to train {classes} classes"
        )
    return classes


def infer_in_channels(checked: list[CheckedPair]) -> int:
    """Network input channels for these images: 3 for gray/RGB/RGBA, else their count."""
    counts = sorted({c.slices.shape[-1] for c in checked})
    if set(counts) <= {1, 3, 4}:
        return 3
    if len(counts) == 1:
        return counts[0]
    raise ValueError(f"the images have different channel counts {counts}; give one kind")


def prepare(
    checked: list[CheckedPair],
    *,
    ignore_index: int | None,
    in_channels: int,
    normalization: dict,
    what: str = "pairs",
) -> list[Prepared]:
    """Match channels, map ``ignore_index`` to :data:`IGNORE` and build each normaliser."""
    items = []
    for c in checked:
        try:
            data, _note = adapt_channels(c.slices, in_channels)
        except ValueError as exc:
            raise ValueError(f"{what}[{c.index}]: {exc}") from None
        labels = c.labels.astype(np.int16)
        if ignore_index is not None:
            labels[c.labels == ignore_index] = IGNORE
        used = [s for s in range(len(labels)) if (labels[s] != IGNORE).any()]
        norm = make_normalizer(data, normalization, in_channels)
        items.append(Prepared(data, labels, norm, c.index, used))
    return items


def has_foreground(item: Prepared, slices: list[int] | None = None) -> bool:
    chosen = item.slices if slices is None else slices
    return any((item.labels[s] > 0).any() for s in chosen)


def split(items: list[Prepared], val_fraction: float, seed: int):
    """Hold out validation data: ``(train, val, rule)``.

    Rules, in order: ``val_fraction == 0`` holds nothing out. Two or more images: whole
    images (``round(val_fraction * n)``, at least 1, chosen with ``seed``; the training
    side keeps an image with foreground). One 3D stack: the last ``val_fraction`` of its
    slices with foreground, as one contiguous block, and every slice after them. One 2D
    image: a band along one border (``val_fraction`` of the height or width, the border
    whose foreground share is closest to the whole image's); its labels are hidden from
    training. Validation is capped at ``TRAIN_LIMITS["max_val_slices"]`` slices.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if val_fraction == 0:
        return items, [], "none"
    if len(items) >= 2:
        train, val, rule = _split_images(items, val_fraction, seed)
    elif items[0].labels.shape[0] > 1:
        train, val, rule = _split_slices(items[0], val_fraction)
    else:
        train, val, rule = _split_band(items[0], val_fraction)
    return train, cap_slices(val), rule


def _split_images(items, val_fraction, seed):
    n_val = min(max(1, round(val_fraction * len(items))), len(items) - 1)
    order = np.random.default_rng(seed).permutation(len(items))
    fg = [has_foreground(it) for it in items]
    val_ids: set[int] = set()
    for i in map(int, order):
        if len(val_ids) == n_val:
            break
        if any(fg[j] for j in range(len(items)) if j != i and j not in val_ids):
            val_ids.add(i)
    train = [it for j, it in enumerate(items) if j not in val_ids]
    val = [items[j] for j in sorted(val_ids)]
    names = ", ".join(str(it.index) for it in val)
    return train, val, f"by image: pairs {names} held out"


def _split_slices(item: Prepared, val_fraction: float):
    fg = [s for s in item.slices if (item.labels[s] > 0).any()]
    if len(fg) < 2:
        raise ValueError(
            "cannot hold out validation slices: the only stack has foreground in "
            f"{len(fg)} slice; pass val_pairs or val_fraction=0"
        )
    cut = fg[-max(1, round(val_fraction * len(fg)))]
    train = replace(item, slices=[s for s in item.slices if s < cut])
    val = replace(item, slices=[s for s in item.slices if s >= cut])
    return [train], [val], f"by slice: slices {cut}..{val.slices[-1]} held out"


def _split_band(item: Prepared, val_fraction: float):
    labels = item.labels[0]
    height, width = labels.shape
    overall = (labels > 0).mean()
    best = None
    sides = (("top", 0, height), ("bottom", 0, height), ("left", 1, width), ("right", 1, width))
    for side, axis, size in sides:
        n = max(1, round(val_fraction * size))
        band = np.zeros(labels.shape, bool)
        index = slice(0, n) if side in ("top", "left") else slice(size - n, size)
        band[(index, slice(None)) if axis == 0 else (slice(None), index)] = True
        fg_in, fg_out = (labels[band] > 0).sum(), (labels[~band] > 0).sum()
        if fg_in and fg_out:
            score = abs((labels[band] > 0).mean() - overall)
            if best is None or score < best[0]:
                best = (score, side, n, band)
    if best is None:
        raise ValueError(
            "cannot hold out validation data from a single 2D image whose foreground "
            "does not reach two borders' bands; pass val_pairs or val_fraction=0"
        )
    _, side, n, band = best
    train_labels, val_labels = item.labels.copy(), item.labels.copy()
    train_labels[0][band] = IGNORE
    val_labels[0][~band] = IGNORE
    rule = f"band: {n} pixels along the {side} border of the single image held out"
    return [replace(item, labels=train_labels)], [replace(item, labels=val_labels)], rule


def cap_slices(items: list[Prepared]) -> list[Prepared]:
    """Keep at most ``max_val_slices`` slices in all, evenly spread over each image."""
    limit = TRAIN_LIMITS["max_val_slices"]
    total = sum(len(it.slices) for it in items)
    if total <= limit:
        return items
    capped = []
    for it in items:
        keep = max(1, round(limit * len(it.slices) / total))
        picks = np.linspace(0, len(it.slices) - 1, keep).round().astype(int)
        capped.append(replace(it, slices=[it.slices[p] for p in sorted(set(picks))]))
    return capped
