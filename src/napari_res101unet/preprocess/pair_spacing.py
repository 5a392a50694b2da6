"""The pixel spacing a model trains at, and pairs resampled to it.

``train(..., spacing=...)`` takes one spacing for every pair, or one per pair (None where
unknown). The model's spacing is the one of the model being fine-tuned when it has one,
else the median, per in-plane axis, of the known spacings; pairs whose spacing differs
from it by more than :data:`~napari_res101unet.preprocess.spacing.SPACING_TOLERANCE` are
resampled to it in plane (images linearly, labels with nearest neighbour), so the network
sees one pixel size. Pairs of unknown spacing are taken as they are. Without any known
spacing the model records none, and inference never resamples for it (as before).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .pairs import CheckedPair, _counts
from .spacing import (
    SPACING_TOLERANCE,
    check_pixel_size,
    nearest,
    resize_slices,
)

Spacing = tuple[float, float]


def pair_spacings(spacing: Any, n: int) -> list[Spacing | None]:
    """In-plane ``(y, x)`` spacing per pair from ``train``'s ``spacing`` argument: None,
    one spacing (2 or 3 numbers; the last two are in plane) or a list of ``n`` of them."""
    if spacing is None:
        return [None] * n
    if isinstance(spacing, (str, bytes)) or not isinstance(spacing, (Sequence, np.ndarray)):
        raise TypeError(
            f"spacing must be a sequence of numbers (or one per pair), got {spacing!r}"
        )
    items = list(spacing)
    per_pair = any(v is None or isinstance(v, (Sequence, np.ndarray)) for v in items)
    if not per_pair:
        return [_in_plane(items)] * n
    if len(items) != n:
        raise ValueError(f"{len(items)} spacings given for {n} pairs; give one per pair")
    return [None if v is None else _in_plane(list(v)) for v in items]


def _in_plane(values: list) -> Spacing:
    if len(values) not in (2, 3):
        raise ValueError(f"a spacing has 2 (y, x) or 3 (z, y, x) values, got {values!r}")
    return check_pixel_size(values[-2:], "spacing")


def training_spacing(
    spacings: Sequence[Spacing | None], model_spacing: Sequence[float] | None = None
) -> Spacing | None:
    """The model's spacing: ``model_spacing`` when given, else the per-axis median of the
    known ``spacings`` (None when none is known)."""
    if model_spacing is not None:
        return check_pixel_size(list(model_spacing)[-2:], "the model's spacing")
    known = np.array([s for s in spacings if s is not None], float)
    if len(known) == 0:
        return None
    return float(np.median(known[:, 0])), float(np.median(known[:, 1]))


def resample_pairs(
    checked: list[CheckedPair],
    spacings: Sequence[Spacing | None],
    target: Spacing | None,
    ignore_index: int | None,
) -> tuple[list[CheckedPair], list[str]]:
    """Pairs with a spacing off ``target`` resampled to it, and what was done."""
    if target is None:
        return checked, []
    out, notes = [], []
    for pair, spacing in zip(checked, spacings):
        if spacing is None or _close(spacing, target):
            out.append(pair)
            continue
        y, x = pair.labels.shape[1:]
        size = (
            max(1, round(y * spacing[0] / target[0])),
            max(1, round(x * spacing[1] / target[1])),
        )
        labels = nearest(pair.labels, size)
        values, counts = _counts(labels, ignore_index, pair.name)
        out.append(
            replace(pair, slices=resize_slices(pair.slices, size), labels=labels, counts=counts,
                    values=values)
        )  # fmt: skip
        notes.append(f"{pair.name} resampled {y}x{x} -> {size[0]}x{size[1]}")
    return out, notes


def _close(a: Spacing, b: Spacing) -> bool:
    return max(abs(a[0] / b[0] - 1), abs(a[1] / b[1] - 1)) <= SPACING_TOLERANCE


def fit_spacing(
    checked: list[CheckedPair],
    spacing: Any,
    model_spacing: Sequence[float] | None,
    ignore_index: int | None,
) -> tuple[list[CheckedPair], Spacing | None]:
    """The pairs at the model's spacing and that spacing (see the module notes)."""
    spacings = pair_spacings(spacing, len(checked))
    target = training_spacing(spacings, model_spacing)
    resampled, _notes = resample_pairs(checked, spacings, target, ignore_index)
    return resampled, target
