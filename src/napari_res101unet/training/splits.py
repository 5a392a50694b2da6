"""Holding out validation data from the training pairs (see :func:`split`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..config import TRAIN_LIMITS
from ..preprocess.pairs import IGNORE, Prepared


def has_foreground(item: Prepared, slices: list[int] | None = None) -> bool:
    chosen = item.slices if slices is None else slices
    return any((item.labels[s] > 0).any() for s in chosen)


def split(items: list[Prepared], val_fraction: float, seed: int):
    """Hold out validation data: ``(train, val, rule)``.

    Rules, in order: ``val_fraction == 0`` holds nothing out. Two or more images: whole
    images (``round(val_fraction * n)``, at least 1, chosen with ``seed``, no more once
    ``TRAIN_LIMITS["max_val_slices"]`` slices are held out; the training side keeps an
    image with foreground). One 3D stack: the last ``val_fraction`` of its
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
    """Whole images, until ``val_fraction`` of them or ``max_val_slices`` slices are held
    out: validation scores no more slices than that (:func:`cap_slices`), so images held
    out beyond it would be neither trained on nor scored (until issue 26, 37 of the 506
    liver training slices were)."""
    n_val = min(max(1, round(val_fraction * len(items))), len(items) - 1)
    order = np.random.default_rng(seed).permutation(len(items))
    fg = [has_foreground(it) for it in items]
    val_ids: set[int] = set()
    held = 0
    for i in map(int, order):
        if len(val_ids) == n_val or held >= TRAIN_LIMITS["max_val_slices"]:
            break
        if any(fg[j] for j in range(len(items)) if j != i and j not in val_ids):
            val_ids.add(i)
            held += len(items[i].slices)
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
