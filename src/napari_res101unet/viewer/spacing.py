"""The pixel spacing of a napari layer, when it is known (Qt-free, numpy only).

The reader puts a file's spacing into the layer's ``scale`` and its unit into
``metadata["unit"]``. PNG/JPEG/BMP have neither (scale 1, no unit): their spacing is
unknown, and None is returned so that training records none and Segment resamples
nothing (unless a pixel size is given). A scale set by hand (not all 1) counts as known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io._units import UNITLESS


def known_spacing(layer: Any) -> list[float] | None:
    """The in-plane ``[y, x]`` spacing of ``layer``, or None when it is unknown."""
    scale = [float(s) for s in np.asarray(layer.scale).ravel()]
    if len(scale) < 2:
        return None
    unit = (getattr(layer, "metadata", None) or {}).get("unit")
    if unit not in UNITLESS or any(s != 1.0 for s in scale[-2:]):
        return scale[-2:]
    return None
