"""Folders of image/mask pairs, matched by file name (used by ``train`` and ``evaluate``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._content import as_labels
from ._formats import READABLE, suffix
from ._read import read_image
from ._units import UNITLESS, mm_per

MASK_TAGS = ("", "_mask", "_masks", "_label", "_labels", "_seg", "_anno", "_gt")
"""Mask file stems accepted for an image ``<stem>``: ``<stem><tag>``."""


def read_pairs(
    images: Path,
    masks: Path,
    *,
    binary: bool = False,
    spacings: list | None = None,
    mask_spacings_mm: list | None = None,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """``([(image, labels)], names)`` for the image files of ``images`` and their masks.

    ``spacings``, when a list, receives each image's spacing (None where the file gives
    no unit, e.g. PNG/JPEG); ``mask_spacings_mm`` each mask's pixel size in millimetres
    (None likewise).

    Raises
    ------
    ValueError
        When a folder is missing or empty, or an image has no mask (naming it).
    """
    pairs, names = [], []
    for path, mask in match_masks(images, masks):
        image = read_image(path)
        labels, mask_mm = read_mask_file(mask, binary=binary)
        pairs.append((image.data, labels))
        if mask_spacings_mm is not None:
            mask_spacings_mm.append(mask_mm)
        if spacings is not None:
            known = image.metadata.get("unit") not in UNITLESS
            spacings.append(list(image.spacing) if known else None)
        names.append(path.name)
    return pairs, names


def match_masks(images: Path, masks: Path, also=None) -> list[tuple[Path, Path]]:
    """``(image file, mask file)`` for the image files of ``images``, each with its mask in
    ``masks`` (same stem, or the stem and a :data:`MASK_TAGS` tag). ``also(folder)`` adds
    more ``(stem, path)`` entries of a folder (e.g. ``.zarr`` arrays); the images are
    then sorted by stem.

    Raises
    ------
    ValueError
        When a folder is missing or empty, or an image has no mask (naming it).
    """
    images, masks = Path(images), Path(masks)
    for folder in (images, masks):
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder")
    image_files = _files(images) + (also(images) if also else [])
    if not image_files:
        raise ValueError(f"{images} holds no image files ({', '.join(READABLE)})")
    by_stem = dict(_files(masks) + (also(masks) if also else []))
    matched, missing = [], []
    for stem, path in sorted(image_files) if also else image_files:
        mask = next((by_stem[stem + t] for t in MASK_TAGS if stem + t in by_stem), None)
        if mask is None:
            missing.append(path.name)
        else:
            matched.append((path, mask))
    if missing:
        raise ValueError(
            f"{len(missing)} images have no mask in {masks} (e.g. {missing[0]}); masks are "
            f"matched by file name stem, optionally with {', '.join(MASK_TAGS[1:])}"
        )
    return matched


def _files(folder: Path) -> list[tuple[str, Path]]:
    """``(stem, path)`` of the readable files of ``folder`` (not hidden), sorted."""
    found = []
    for path in sorted(folder.iterdir()):
        ext = suffix(path)
        if path.is_file() and not path.name.startswith(".") and ext in READABLE:
            found.append((path.name[: len(path.name) - len(ext)], path))
    return found


def read_mask(path: Path, *, binary: bool = False) -> np.ndarray:
    """Labels of a mask file, normalised like the napari reader does: JPEG → ``> 127``,
    0/255 (or 0/65535) → 0/1, class indices kept; ``binary`` → ``> 0``. Colour masks use
    their first channel."""
    return read_mask_file(path, binary=binary)[0]


def read_mask_file(
    path: Path, *, binary: bool = False
) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """``(labels, spacing_mm)``: a mask file's labels as :func:`read_mask` gives them and
    its pixel size in millimetres, one per axis of ``labels`` (None when the file has no
    physical unit, e.g. PNG/JPEG)."""
    image = read_image(path, labels=False)
    data = image.data[..., 0] if image.rgb else image.data
    labels = as_labels(data, jpeg=suffix(path) in (".jpg", ".jpeg"))
    if labels is None:
        raise ValueError(f"{Path(path).name}: mask holds fractional values; use --binary")
    factor = mm_per(image.metadata.get("unit"))
    spacing = None if factor is None else tuple(float(s) * factor for s in image.spacing)
    return ((labels > 0).astype(np.uint8) if binary else labels), spacing
