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
training augmentation (:mod:`napari_res101unet.training.intensity`). The thresholds are
wide on purpose: on the MSD liver slices the gain fitted between single slices and the
pooled training slices stays within 0.63..1.6 (1st..99th percentile of 100 slices), and a
window compressing contrast to a third gives 2.5..2.9.

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
    data: np.ndarray, slices: Sequence[int] | None = None, budget: int = _SAMPLES
) -> np.ndarray:
    """About ``budget`` pixels (a few million) of ``(N, Y, X, C)`` data, evenly strided, as
    ``(P, C)`` float64, NaN rows dropped."""
    n, y, x, c = data.shape
    chosen = list(range(n)) if slices is None else list(slices)
    most = min(64, max(2, -(-64 * budget // _SAMPLES)))  # fewer slices for a smaller share
    zstep = max(1, -(-len(chosen) // most))
    chosen = chosen[::zstep]
    step = max(1, int(np.ceil(np.sqrt(len(chosen) * y * x / max(1, budget)))))
    # data[s] first: lazy training images (training/lazy_pairs.py) read one slice
    parts = [np.asarray(data[s])[::step, ::step].reshape(-1, c) for s in chosen]
    pixels = np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, c))
    return pixels[~np.isnan(pixels).any(axis=1)]


def landmarks(pixels: np.ndarray) -> np.ndarray:
    """``(C, len(PERCENTILES))`` percentiles of ``(P, C)`` pixels."""
    return np.percentile(pixels, PERCENTILES, axis=0).T


def intensity_record(items: Sequence[tuple[np.ndarray, Sequence[int] | None]]) -> dict | None:
    """``spec.intensity`` of training inputs: ``(data (N, Y, X, C), slices used)`` each.

    Returns ``{"percentiles": [...], "values": [[...] per channel], "dtype": str}``, or
    None when there are no pixels.
    """
    # one budget for the whole set: 200 volumes must not hold 200 x a few million pixels
    share = max(10_000, _SAMPLES // max(1, len(items)))
    pixels = [sample_pixels(data, slices, share) for data, slices in items]
    pixels = [p for p in pixels if len(p)]
    if not pixels:
        return None
    values = landmarks(np.concatenate(pixels))
    return {
        "percentiles": list(PERCENTILES),
        "values": [[round(float(v), 6) for v in row] for row in values],
        "dtype": str(items[0][0].dtype),
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
    if not ok:
        raise ValueError(
            "intensity must be {'percentiles': [...], 'values': [[...] per channel]} with "
            f"one value per percentile, got {record!r:.80}"
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
    pixels = sample_pixels(data)
    if len(pixels) == 0:
        return None
    fit = [PERCENTILES.index(p) for p in FIT_LANDMARKS]
    stored = [record["percentiles"].index(p) for p in FIT_LANDMARKS]
    found = landmarks(pixels)
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
