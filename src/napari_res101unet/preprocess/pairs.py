"""Image/label pairs: the data rules, checked before anything runs, and preparation.

Labels are class indices (0 = background, k = class k). Pixels equal to ``ignore_index``
(unlabelled) become :data:`IGNORE` internally, and so do the pixels that padding adds
around small images: neither counts in the loss or the scores. *Sparse* labels (painted
strokes) use 0 = not annotated, 1 = background, 2.. = classes; :func:`check_pairs` turns
them into class indices with :data:`~napari_res101unet.config.SPARSE_IGNORE` for 0.

Every rule here is numpy only, so napari's process (the Train widget) checks pairs with
the same code as the API and the CLI before any engine starts. Messages name a pair by
its display name when one is given (``'cells + cells mask'``), else as ``pairs[i]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import SPARSE_IGNORE, TRAIN_LIMITS
from .normalize import Normalizer, adapt_channels, as_stack, make_normalizer

IGNORE = -1
_BINCOUNT_LIMIT = 1 << 16  # label values below this are counted densely (512 KiB at most)
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
        Labelled pixels per label value in ``values`` (ignored pixels excluded).
    values : (K,) ndarray
        The label values present, ascending (default: ``0..K-1``).
    """

    slices: np.ndarray
    labels: np.ndarray
    counts: np.ndarray
    index: int
    name: str = ""
    values: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.name = self.name or f"pairs[{self.index}]"
        if self.values is None:
            self.values = np.arange(len(self.counts))


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


def check_pairs(
    pairs: Any,
    *,
    ignore_index: int | None = None,
    sparse: bool = False,
    names: Sequence[str] | None = None,
    what: str = "pairs",
) -> list[CheckedPair]:
    """Check a sequence of ``(image, labels)`` and return them as :class:`CheckedPair`.

    Parameters
    ----------
    pairs : sequence of (image, labels)
        ``image`` is ``(Y, X)``, ``(Y, X, C)``, ``(Z, Y, X)`` or ``(Z, Y, X, C)``; ``labels``
        has the image's spatial shape and an integer (or bool) dtype.
    ignore_index : int or None
        Label value of unlabelled pixels.
    sparse : bool
        Labels are sparse (0 = not annotated, 1 = background, 2.. = classes): they are
        converted with :func:`sparse_to_ignore` and ``ignore_index`` must be None.
    names : sequence of str, optional
        Display names of the pairs, used in messages instead of ``pairs[i]``.

    Raises
    ------
    ValueError
        For mismatched shapes, NaN/inf in an image, negative labels, a pair without any
        labelled pixel, or an empty sequence (messages name the pair and values).
    TypeError
        For non-integer labels or something that is not a sequence of pairs.
    """
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
    ):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
    if sparse and ignore_index not in (None, SPARSE_IGNORE):
        raise ValueError("sparse labels mark unlabelled pixels with 0; give no ignore_index")
    if isinstance(pairs, np.ndarray) or not isinstance(pairs, Sequence):
        raise TypeError(
            f"{what} must be a list of (image, labels) pairs, got {type(pairs).__name__}"
        )
    if len(pairs) == 0:
        raise ValueError(f"{what} is empty; give at least one (image, labels) pair")
    if names is not None and len(names) != len(pairs):
        raise ValueError(f"{len(names)} names given for {len(pairs)} {what}")
    ignore = SPARSE_IGNORE if sparse else ignore_index
    return [
        _check_pair(pair, i, ignore, sparse, _display(names, i, what))
        for i, pair in enumerate(pairs)
    ]


def _display(names: Sequence[str] | None, i: int, what: str) -> str:
    return f"'{names[i]}'" if names is not None else f"{what}[{i}]"


def sparse_to_ignore(labels: Any, name: str = "labels") -> np.ndarray:
    """Sparse labels as class indices: 0 (not annotated) → ``SPARSE_IGNORE``, 1
    (background) → 0, k → k - 1.

    Raises
    ------
    ValueError
        When a value is ``>= SPARSE_IGNORE`` or nothing is annotated.
    """
    lab = np.asarray(labels)
    top = int(lab.max(initial=0))
    if top >= SPARSE_IGNORE:
        raise ValueError(
            f"{name} uses label {top}; sparse labels allow values up to {SPARSE_IGNORE - 1}"
        )
    if top < 1 or (lab.dtype.kind == "i" and int(lab.min(initial=0)) < 0):
        raise ValueError(
            f"{name} holds no sparse annotation: paint at least background (1) and one "
            "class (2); 0 means not annotated"
        )
    out = (lab.astype(np.int16) - 1).astype(np.uint8)
    out[lab == 0] = SPARSE_IGNORE
    return out


def _check_pair(
    pair: Any, i: int, ignore_index: int | None, sparse: bool, name: str
) -> CheckedPair:
    if isinstance(pair, np.ndarray) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(
            f"{name} must be an (image, labels) pair, got {type(pair).__name__}; "
            "pass a list of pairs, e.g. [(image, labels)]"
        )
    image, labels = np.asarray(pair[0]), np.asarray(pair[1])
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: labels must be an integer array (class index per pixel), got "
            f"dtype {labels.dtype}; for a 0/1 float mask use mask > 0.5"
        )
    shape_help = (
        f"{name}: image shape {image.shape} does not match labels shape {labels.shape}; "
        "labels must be (Y, X) for a (Y, X[, C]) image or (Z, Y, X) for a (Z, Y, X[, C]) stack"
    )
    if labels.ndim not in (2, 3) or image.ndim not in (labels.ndim, labels.ndim + 1):
        raise ValueError(shape_help)
    channel_axis = -1 if image.ndim == labels.ndim + 1 else None
    try:
        view = as_stack(image, channel_axis=channel_axis, axis=0)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    if view.spatial_shape != labels.shape:
        raise ValueError(shape_help)
    if sparse:
        labels = sparse_to_ignore(labels, name)
    stack_labels = labels if labels.ndim == 3 else labels[np.newaxis]
    values, counts = _counts(stack_labels, ignore_index, name)
    return CheckedPair(view.slices, stack_labels, counts, i, name, values)


def _counts(
    labels: np.ndarray, ignore_index: int | None, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The label values present and their pixel counts, in memory bounded by the pixel
    count, never by the largest value (an instance id of 2**31 allocates nothing more)."""
    values = labels.ravel() if ignore_index is None else labels[labels != ignore_index]
    if values.size == 0:
        raise ValueError(
            f"{name} has no labelled pixel (all are ignore_index={ignore_index}); "
            "label some pixels or leave the pair out"
        )
    low = int(values.min())
    if low < 0:
        allowed = "" if ignore_index is None else f" (ignore_index is {ignore_index})"
        raise ValueError(f"{name} has label {low}; labels must be >= 0{allowed}")
    return value_counts(values)


def value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, counts)`` of the non-negative integers ``values``: a bincount when the
    largest value is small (fast), else a sort (``np.unique``); never sized by the value."""
    if values.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    high = int(values.max())
    if high < max(_BINCOUNT_LIMIT, values.size):
        dense = np.bincount(values.ravel().astype(np.int64, copy=False))
        present = np.flatnonzero(dense)
        return present, dense[present]
    found, counts = np.unique(values, return_counts=True)
    return found.astype(np.int64), counts.astype(np.int64)


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
    values, total = _merged_counts(checked)
    if total[values > 0].sum() == 0:
        names = ", ".join(c.name for c in checked)
        raise ValueError(
            f"the labels of {names} hold no foreground: they are empty (every labelled "
            "pixel is background, 0); paint at least one object"
        )
    if classes is not None:
        check_label_bound(checked, classes)
    else:
        classes = _infer_classes(values, total)
    if ignore_index is not None and 0 <= ignore_index < classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a class label (classes 0..{classes - 1}); "
            "mark unlabelled pixels with a value outside the classes, e.g. 255 or -1"
        )
    return classes


def check_label_bound(checked: list[CheckedPair], classes: int) -> None:
    """Raise ValueError naming the pair when a label value is ``>= classes``."""
    for c in checked:
        largest = int(c.values[-1]) if len(c.values) else -1
        if largest >= classes:
            raise ValueError(
                f"{c.name} has label {largest}, beyond classes={classes} "
                f"(allowed label values: 0..{classes - 1}); raise classes or fix the labels"
            )


def _merged_counts(checked: list[CheckedPair]) -> tuple[np.ndarray, np.ndarray]:
    """Label values present in any pair and their total pixel counts."""
    values = np.concatenate([np.asarray(c.values, np.int64) for c in checked])
    counts = np.concatenate([np.asarray(c.counts, np.int64) for c in checked])
    found, where = np.unique(values, return_inverse=True)
    return found, np.bincount(where, weights=counts, minlength=len(found)).astype(np.int64)


def _infer_classes(values: np.ndarray, total: np.ndarray) -> int:
    used = values[total > 0]
    largest = int(used[-1]) if len(used) else 0
    classes = max(largest + 1, 2)
    limit = TRAIN_LIMITS["max_auto_classes"]
    missing = largest - int(np.count_nonzero(used > 0))  # values 1..largest never used
    if classes > limit or missing:
        shown = ", ".join(map(str, used[:8])) + (", ..." if len(used) > 8 else "")
        raise ValueError(
            f"the labels use the values {{{shown}}} (largest {largest}); this looks "
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
) -> list[Prepared]:
    """Match channels, map ``ignore_index`` to :data:`IGNORE` and build each normaliser."""
    items = []
    for c in checked:
        try:
            data, _note = adapt_channels(c.slices, in_channels)
        except ValueError as exc:
            raise ValueError(f"{c.name}: {exc}") from None
        labels = c.labels.astype(np.int16)
        if ignore_index is not None:
            labels[c.labels == ignore_index] = IGNORE
        used = [s for s in range(len(labels)) if (labels[s] != IGNORE).any()]
        norm = make_normalizer(data, normalization, in_channels)
        items.append(Prepared(data, labels, norm, c.index, used))
    return items
