"""What the pixels are: label maps, RGB-encoded grayscale, CT in Hounsfield units.

Label maps are recognised by name or by content:

* **Name**: the file name's last word is one of ``mask(s)``, ``seg``,
  ``segmentation(s)``, ``label(s)``, ``labelmap``, ``anno``, ``annotation(s)``, ``gt``,
  ``groundtruth`` (trailing digits and a ``2d``/``3d`` tag ignored: ``liver_mask.png``,
  ``case1_seg.nii.gz``, ``mask2d.tif``, Slicer's ``x.seg.nrrd``); or its first word is
  ``segmentation``, ``seg``, ``mask(s)``, ``labels``, ``labelmap`` or ``gt`` (LiTS
  ``segmentation-0.nii``); or the parent folder is ``mask(s)``, ``label(s)``,
  ``labelsTr``/``labelsTs`` (MSD, nnU-Net), ``segmentations``, ``annotations``, ``gt`` or
  ``ground_truth``. A leading ``label`` alone is not enough (``label-free_cells.tif`` is
  an image).
* **Content**: an integer (or bool) single-channel image whose subsample holds 0 and at
  least one other value, none negative, that are either binary (``{0, 1}``, ``{0, 255}``,
  ``{0, 65535}``) or label numbers (the largest at most 40, like the class ids of VOC or
  Cityscapes, or at most twice their count + 1, like counted regions), *and* whose
  pixels are piecewise constant (at least 75 % of horizontally adjacent pixels equal;
  90 % when there are more than 16 values, up to 1024). So a 12-grey-level image
  (levels spread over 0..255), an all-zero volume and noisy integer images stay
  images, while a label map with 40 regions opens as labels. A JPEG counts when nearly
  all its pixels (>= 98 %) are near black or near white and some are white. Floats
  never count by content (a 0/1 float may be a probability).

The name alone never turns pixels that cannot be labels into labels: RGB colour,
non-integral floats, and negative values (a CT named ``*_gt``) stay images. Label maps
are normalised:

* ``{0, 255}`` (or ``{0, 65535}``) binary masks become ``{0, 1}`` (``255 -> 1``);
* JPEG masks are binarised at ``> 127``, because JPEG is lossy and edges hold every
  value between 0 and 255;
* integral floats (some tools save label maps as float32) become integers;
* bool becomes uint8.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

MAX_CONTENT_LABELS = 16
MAX_CONTENT_LABELS_SMOOTH = 1024  # more labels than 16 need clearly piecewise-constant pixels
SMALL_LABEL = 40  # class ids of semantic datasets (VOC 0-20, Cityscapes 0-33) stay below
SMOOTH_FEW = 0.75  # equal-neighbour fraction asked of <= 16 values
SMOOTH_MANY = 0.9  # ... and of more
SOFT_TISSUE_WINDOW = (-160.0, 240.0)  # abdominal soft tissue: level 40 HU, width 400 HU
_SAMPLE = 1 << 18
_END_WORDS = frozenset(
    "mask masks seg segmentation segmentations label labels labelmap anno annotation "  # noqa: SIM905
    "annotations gt groundtruth".split()
)
_START_WORDS = frozenset("segmentation seg mask masks labels labelmap gt".split())  # noqa: SIM905
_FOLDERS = frozenset(
    "mask masks label labels labelstr labelsts segmentations annotations gt ground_truth "  # noqa: SIM905
    "groundtruth".split()
)


def subsample(data: np.ndarray, size: int = _SAMPLE) -> np.ndarray:
    """About ``size`` evenly strided values of ``data`` (1D), for cheap statistics."""
    flat = data.reshape(-1)
    return flat[:: max(1, flat.size // size)]


def name_says_labels(path: str | Path, stem: str) -> bool:
    """Whether the file name ``stem`` (or the parent folder of ``path``) names a label map."""
    words = [re.sub(r"\d+d?$", "", w) for w in re.split(r"[^0-9a-z]+", stem.lower())]
    words = [w for w in words if w]
    if words and (words[-1] in _END_WORDS or words[0] in _START_WORDS):
        return True
    return Path(path).parent.name.lower() in _FOLDERS


def gray_from_rgb(data: np.ndarray, *, lossy: bool = False) -> np.ndarray | None:
    """The single channel of an RGB(A) image whose R, G and B are equal, else None.

    An alpha channel must be fully opaque. ``lossy`` (JPEG) allows differences of up
    to 3 grey levels between channels and then returns their rounded mean.

    Parameters
    ----------
    data : (..., Y, X, 3 or 4) ndarray
    """
    if data.shape[-1] not in (3, 4) or data.dtype.kind not in "ui":
        return None
    if data.shape[-1] == 4 and not np.all(data[..., 3] == np.iinfo(data.dtype).max):
        return None
    r, g, b = data[..., 0], data[..., 1], data[..., 2]
    if not lossy:
        return r.copy() if np.array_equal(r, g) and np.array_equal(r, b) else None
    wide = data[..., :3].astype(np.int32)
    spread = wide.max(axis=-1) - wide.min(axis=-1)
    if spread.max() > 3:
        return None
    return np.rint(wide.mean(axis=-1)).astype(data.dtype)


def content_says_labels(data: np.ndarray, *, jpeg: bool = False) -> bool:
    """Whether single-channel ``data`` looks like a label map (see the module notes)."""
    if data.dtype == bool:
        return True
    if data.dtype.kind not in "ui" or data.size == 0:
        return False
    sample = subsample(data)
    if jpeg:
        dark, bright = np.mean(sample <= 40), np.mean(sample >= 215)
        return dark + bright >= 0.98 and bright > 0
    values = np.unique(sample)
    if values[0] != 0 or len(values) < 2 or len(values) > MAX_CONTENT_LABELS_SMOOTH:
        return False  # no background, empty (all zero) or far too many values
    top = int(values[-1])
    binary = len(values) == 2 and top in (1, 255, 65535)
    numbered = top <= max(SMALL_LABEL, 2 * len(values) + 1)  # class ids or counted regions
    if not (binary or numbered):
        return False
    smooth = piecewise_constant(data)
    return smooth >= (SMOOTH_FEW if len(values) <= MAX_CONTENT_LABELS else SMOOTH_MANY)


def piecewise_constant(data: np.ndarray, slices: int = 8) -> float:
    """Fraction of horizontally adjacent pixels that are equal (label maps: close to 1).

    Looks at up to ``slices`` evenly spread 2D slices of ``(Y, X)`` or ``(Z, Y, X)``.
    """
    planes = data.reshape((-1, *data.shape[-2:]))
    planes = planes[:: max(1, len(planes) // slices)][:slices]
    if planes.shape[-1] < 2:
        return 1.0
    return float(np.mean(planes[..., 1:] == planes[..., :-1]))


def name_allows_labels(data: np.ndarray) -> bool:
    """Whether pixels of a file *named* as a mask can be a label map: non-negative
    integers (or integral floats), so a CT named ``*_gt`` stays an image."""
    if data.dtype == bool:
        return True
    if data.dtype.kind not in "uif" or data.size == 0:
        return data.size == 0
    sample = subsample(data)
    if data.dtype.kind == "f" and not np.all(np.isfinite(sample)):
        return False
    return bool(sample.min() >= 0)


def as_labels(data: np.ndarray, *, jpeg: bool = False) -> np.ndarray | None:
    """``data`` as a normalised integer label map, or None when it cannot be one.

    Parameters
    ----------
    data : (Y, X) or (Z, Y, X) ndarray
        Single channel.
    jpeg : bool
        Binarise at ``> 127`` (lossy source).
    """
    if data.dtype == bool:
        return data.astype(np.uint8)
    if data.dtype.kind == "f":
        if not (np.all(np.isfinite(data)) and np.all(np.mod(data, 1) == 0)):
            return None
        return data.astype(smallest_int_dtype(data))
    if data.dtype.kind not in "ui":
        return None
    if jpeg:
        return (data > 127).astype(np.uint8)
    top = int(data.max()) if data.size else 0
    if top in (255, 65535) and not np.any((data != 0) & (data != top)):
        return (data == top).astype(np.uint8)
    return data


def smallest_int_dtype(labels: np.ndarray) -> np.dtype:
    """uint8, uint16 or uint32 (int16/int32 with negatives) that holds ``labels``."""
    lo = int(labels.min()) if labels.size else 0
    hi = int(labels.max()) if labels.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"label values {lo}..{hi} do not fit a 64-bit integer")


def looks_like_hu(data: np.ndarray, *, modality: str | None = None) -> bool:
    """Whether single-channel ``data`` is CT in Hounsfield units.

    True for DICOM modality ``CT``; otherwise when signed integer or float data has a
    minimum at or below -500 (air is -1000 HU) and a maximum of at least 100, within the
    int16 range. MR and microscopy data are never negative.
    """
    if modality is not None and modality.strip().upper() == "CT":
        return True
    if data.dtype.kind not in "if" or data.size == 0:
        return False
    sample = subsample(data)
    lo, hi = float(np.min(sample)), float(np.max(sample))
    return -32768 <= lo <= -500 and 100 <= hi <= 32767


def narrow_integers(data: np.ndarray) -> np.ndarray:
    """int32/int64/float data holding integers that fit int16 (or uint16) as that type.

    DICOM rescaling (slope/intercept) often yields int32 or float for CT whose Hounsfield
    values fit int16; this keeps them exact and halves memory.
    """
    if data.dtype.itemsize <= 2 or data.dtype.kind not in "uif" or data.size == 0:
        return data
    if data.dtype.kind == "f" and not np.all(np.mod(data, 1) == 0):
        return data
    lo, hi = data.min(), data.max()
    if lo >= -32768 and hi <= 32767:
        return data.astype(np.int16)
    if lo >= 0 and hi <= 65535:
        return data.astype(np.uint16)
    return data
