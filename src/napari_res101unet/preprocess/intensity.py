"""The intensity distribution a model was trained on, and mapping an input onto it.

Training records, per channel, percentile landmarks of its raw training inputs
(:func:`intensity_record`, stored as ``spec.intensity``). Inference computes the same
landmarks of the image and fits them to the training ones with **one gain and offset per
channel** (least squares over :data:`FIT_LANDMARKS`): a *percentile standardisation*
restricted to a linear map. When the gain is beyond :data:`GAIN_TOLERANCE` (either way)
or the offset moves the median by more than :data:`SHIFT_TOLERANCE` of the training
range, the image is mapped with that line before normalisation, and a note says so.

Why linear, and why not histogram matching: the shift this addresses is a display window
(another site exports CT with a wide lung or bone window, which compresses soft tissue
into a narrow grey band), and a window is a linear map, so a line undoes it. One gain and
offset keep the image's own contrasts between tissues: a slice holding more or less of
some tissue than the training average is not distorted, which full histogram matching
(forcing the training histogram onto every image) would do, and which piecewise landmark
matching does between its landmarks. Gamma and milder window changes are left to the
training augmentation (:mod:`napari_res101unet.training.intensity_augment`). The thresholds are
wide on purpose: on the 137 held-out MSD liver slices the gain fitted between a single
slice and the pooled training slices stays within 0.69..1.44 (1st..99th percentile), and
the same slices with contrast compressed to a third give 2.1..4.4 (136 of 137 mapped).

**Saturated pixels are left out** of both the record and the image's landmarks: in each
slice and channel, the pixels at its minimum and at its maximum (a display window's floor
and ceiling: air, bone) are dropped before the percentiles, when at least a tenth of the
slice remains (``"saturated": "excluded"`` in the record). How much air a slice shows
depends on the field of view, not on the rendering, and on the liver slices about half of
the pixels are that floor, so with them in, the fitted gain followed each slice's content:
for slices compressed to a third it ranged 2.1..4.0 (10th..90th percentile over the 137
held-out slices), and 2.4..3.7 without them. Records of earlier versions (no
``"saturated"`` key) are matched on all pixels, as they were made.

A model without ``spec.intensity`` (earlier checkpoints) is never mapped. Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0)
"""Landmarks recorded per channel (``spec.intensity["percentiles"]``)."""
FIT_LANDMARKS = (5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0)
GAIN_TOLERANCE = 2.0
SHIFT_TOLERANCE = 0.5
_SAMPLES = 2_000_000


def sample_pixels(
    data: np.ndarray,
    slices: Sequence[int] | None = None,
    budget: int = _SAMPLES,
    inner: bool = False,
) -> list[np.ndarray]:
    """About ``budget`` pixels (a few million) of ``(N, Y, X, C)`` data, evenly strided,
    as one float64 array per channel, NaN dropped; ``inner``: each slice's saturated
    extremes left out (:func:`inside_extremes`)."""
    n, y, x, c = data.shape
    chosen = list(range(n)) if slices is None else list(slices)
    most = min(64, max(2, -(-64 * budget // _SAMPLES)))  # fewer slices for a smaller share
    zstep = max(1, -(-len(chosen) // most))
    chosen = chosen[::zstep]
    step = max(1, int(np.ceil(np.sqrt(len(chosen) * y * x / max(1, budget)))))
    channels: list[list[np.ndarray]] = [[] for _ in range(c)]
    for s in chosen:  # data[s] first: lazy training images (training/lazy_pairs.py)
        part = np.asarray(data[s])[::step, ::step].reshape(-1, c).astype(np.float64)
        for ch in range(c):
            values = part[:, ch]
            values = values[~np.isnan(values)]
            channels[ch].append(inside_extremes(values) if inner else values)
    return [np.concatenate(v) if v else np.zeros(0) for v in channels]


def inside_extremes(values: np.ndarray) -> np.ndarray:
    """``values`` without those at their minimum and maximum (a window's saturated floor and
    ceiling), or all of them when that would leave less than a tenth."""
    if values.size == 0:
        return values
    keep = values[(values > values.min()) & (values < values.max())]
    return keep if keep.size >= 0.1 * values.size else values


def landmarks(samples: Sequence[np.ndarray]) -> np.ndarray:
    """``(C, len(PERCENTILES))`` percentiles of one pixel array per channel."""
    return np.stack([np.percentile(v, PERCENTILES) for v in samples])


def intensity_record(items: Sequence[tuple[np.ndarray, Sequence[int] | None]]) -> dict | None:
    """``spec.intensity`` of training inputs: ``(data (N, Y, X, C), slices used)`` each.

    Returns ``{"percentiles": [...], "values": [[...] per channel], "dtype": str,
    "saturated": "excluded"}``, or None when there are no pixels.
    """
    # one budget for the whole set: 200 volumes must not hold 200 x a few million pixels
    share = max(10_000, _SAMPLES // max(1, len(items)))
    per_item = [sample_pixels(data, slices, share, inner=True) for data, slices in items]
    channels = [np.concatenate(parts) for parts in zip(*per_item, strict=True)]
    if not channels or any(v.size == 0 for v in channels):
        return None
    values = landmarks(channels)
    return {
        "percentiles": list(PERCENTILES),
        "values": [[round(float(v), 6) for v in row] for row in values],
        "dtype": str(items[0][0].dtype),
        "saturated": "excluded",
    }


def check_record(record: object) -> None:
    """Refuse a malformed ``spec.intensity`` (ValueError naming the problem)."""
    if record is None:
        return
    ok = isinstance(record, dict) and isinstance(record.get("values"), list)
    if ok:
        rows = record["values"]
        ok = 0 < len(rows) <= 512 and all(
            isinstance(r, list)
            and len(r) == len(record.get("percentiles") or [])
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
            for r in rows
        )
        ok = ok and record.get("saturated", "kept") in ("kept", "excluded")
    if not ok:
        raise ValueError(
            "intensity must be {'percentiles': [...], 'values': [[...] per channel]} with "
            "one value per percentile (and 'saturated': 'kept' or 'excluded'), got "
            f"{record!r:.80}"
        )


def fit_line(found: np.ndarray, wanted: np.ndarray) -> tuple[float, float]:
    """Gain and offset mapping landmarks ``found`` onto ``wanted`` (least squares)."""
    if np.ptp(found) <= 1e-12:
        return 1.0, float(np.mean(wanted) - np.mean(found))
    gain, offset = np.polyfit(found, wanted, 1)
    return float(gain), float(offset)


def plan_match(data: np.ndarray, record: dict | None) -> list[tuple[float, float]] | None:
    """Per channel ``(gain, offset)`` when ``data`` (``(N, Y, X, C)``) differs strongly
    from the training record; None when it does not (or there is no record)."""
    if not record or len(record["values"]) != data.shape[-1]:
        return None
    samples = sample_pixels(data, inner=record.get("saturated") == "excluded")
    if any(v.size == 0 for v in samples):
        return None
    fit = [PERCENTILES.index(p) for p in FIT_LANDMARKS]
    stored = [record["percentiles"].index(p) for p in FIT_LANDMARKS]
    found = landmarks(samples)
    lines, strong = [], False
    for c in range(data.shape[-1]):
        wanted = np.asarray(record["values"][c], float)[stored]
        gain, offset = fit_line(found[c, fit], wanted)
        spread = max(wanted[-1] - wanted[0], 1e-12)
        median = found[c, PERCENTILES.index(50.0)]
        moved = abs(gain * median + offset - median) / spread
        if not 1 / GAIN_TOLERANCE <= gain <= GAIN_TOLERANCE or moved > SHIFT_TOLERANCE:
            strong = True
        lines.append((gain, offset))
    return lines if strong else None


def match_intensity(data: np.ndarray, record: dict | None) -> tuple[np.ndarray, str]:
    """``data`` mapped onto the training distribution when it differs strongly, and a note.

    Parameters
    ----------
    data : (N, Y, X, C) ndarray
        Raw input with the model's channel count (a broadcast gray view is mapped once).
    record : dict or None
        The model's ``spec.intensity``.

    Returns
    -------
    data : (N, Y, X, C) ndarray
        The input unchanged, or mapped (same dtype; integers rounded and clipped to it).
    note : str
        ``""`` or what was done (for the result's notes / the status line).
    """
    lines = plan_match(data, record)
    if lines is None:
        return data, ""
    shared = data.shape[-1] > 1 and data.strides[-1] == 0  # gray replicated to channels
    source = data[..., :1] if shared else data
    gains = np.array([g for g, _ in lines[: source.shape[-1]]], np.float32)
    offsets = np.array([o for _, o in lines[: source.shape[-1]]], np.float32)
    mapped = source.astype(np.float32) * gains + offsets
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        mapped = np.clip(np.rint(mapped), info.min, info.max).astype(data.dtype)
    else:
        mapped = mapped.astype(data.dtype, copy=False)
    if shared:
        mapped = np.broadcast_to(mapped, data.shape)
    shown = ", ".join(f"x{g:.2f}{o:+.1f}" for g, o in lines[: source.shape[-1]])
    return mapped, f"intensities mapped onto the training distribution ({shown})"
