"""Intensity augmentation the way real data differs: display windows, gamma, contrast.

Images of one organ differ between sites mostly by how they were rendered: another
display window (a wide lung/bone window compresses soft tissue into a narrow grey band),
another gamma, another scanner gain. Brightness noise alone does not teach a network that.
Each patch, in the display units of its normaliser (``0..1`` = the normaliser's low..high,
before the ImageNet standardisation), may get, each with probability ``P * strength``:

* a **random linear window**: centre shifted by up to :data:`WINDOW_SHIFT`, width scaled
  log-uniformly in :data:`WINDOW_WIDTH`;
* **contrast compression around a grey level** ``g`` drawn in :data:`GREY_RANGE`:
  ``g + f (u - g)`` with ``f`` log-uniform in :data:`COMPRESSION_RANGE` (down to a third,
  what a wide CT window does to soft tissue);
* a **gamma** log-uniform in :data:`GAMMA_RANGE` (on ``[0, 1]``);

then the mild contrast/brightness jitter of earlier versions, scaled by ``strength``. The
same random numbers are drawn whatever the strength, so the patches' positions do not
depend on it. Numpy only.
"""

from __future__ import annotations

import numpy as np

P_WINDOW, P_COMPRESS, P_GAMMA = 0.4, 0.3, 0.3
WINDOW_SHIFT = 0.15
WINDOW_WIDTH = (0.7, 1.4)
GREY_RANGE = (0.3, 0.7)
COMPRESSION_RANGE = (1.0 / 3.0, 1.0)
GAMMA_RANGE = (0.7, 1.5)
CONTRAST_RANGE = (0.85, 1.15)
BRIGHTNESS_RANGE = (-0.2, 0.2)
"""Final jitter in normalised units (``x * contrast + brightness``, per patch)."""
DRAWS = 10
"""Random numbers drawn per patch."""


def _log_uniform(u: float, bounds: tuple[float, float]) -> float:
    low, high = np.log(bounds[0]), np.log(bounds[1])
    return float(np.exp(low + u * (high - low)))


def _between(u: float, bounds: tuple[float, float]) -> float:
    return bounds[0] + u * (bounds[1] - bounds[0])


def jitter_intensity(
    image: np.ndarray,
    rng: np.random.Generator,
    strength: float = 1.0,
    mean: np.ndarray | float = 0.0,
    std: np.ndarray | float = 1.0,
    display: bool = True,
) -> np.ndarray:
    """Apply the module's random intensity changes to one normalised patch.

    Parameters
    ----------
    image : (C, Y, X) float32 ndarray
        A patch as the network sees it: ``(u - mean) / std`` with ``u`` in display units.
    rng : numpy Generator
        Draws :data:`DRAWS` numbers, whatever ``strength``.
    strength : float
        0 (no change) .. 1 (the probabilities and jitter of the module notes).
    mean, std : (C,) ndarray or float
        The normaliser's standardisation (to go to display units and back).
    display : bool
        Whether the patch has display units (0..1 = the normaliser's range); False (the
        ``none`` normalisation: raw values) keeps only the contrast/brightness jitter.

    Returns
    -------
    (C, Y, X) float32 ndarray
    """
    u = rng.random(DRAWS)
    mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, np.float32).reshape(-1, 1, 1)
    x = image * std + mean
    strength_display = strength if display else 0.0
    if u[0] < P_WINDOW * strength_display:
        centre = 0.5 + WINDOW_SHIFT * (2 * u[1] - 1)
        x = (x - centre) / _log_uniform(u[2], WINDOW_WIDTH) + 0.5
    if u[3] < P_COMPRESS * strength_display:
        grey = _between(u[4], GREY_RANGE)
        x = grey + _log_uniform(u[5], COMPRESSION_RANGE) * (x - grey)
    if u[6] < P_GAMMA * strength_display:
        inside = (x >= 0) & (x <= 1)
        x = np.where(inside, np.clip(x, 0, 1) ** _log_uniform(u[7], GAMMA_RANGE), x)
    x = (x - mean) / std
    contrast = 1.0 + strength * (_between(u[8], CONTRAST_RANGE) - 1.0)
    brightness = strength * _between(u[9], BRIGHTNESS_RANGE)
    return (x * contrast + brightness).astype(np.float32, copy=False)
