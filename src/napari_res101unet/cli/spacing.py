"""``--pixel-size``: the in-plane pixel size of inputs whose files give none."""

from __future__ import annotations

import argparse


def add_pixel_size(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--pixel-size",
        type=float,
        default=None,
        metavar="SIZE",
        help=f"in-plane pixel size (e.g. mm) {what}; resampled to the model's when they "
        "differ by more than 10%%",
    )


def pixel_spacing(pixel_size: float | None, spacings: list) -> list | None:
    """``train``'s ``spacing``: the given pixel size for every pair, else the files'
    spacings (None when no file gives one). Raises ValueError for 0/NaN/negative sizes."""
    from ..preprocess.spacing import check_pixel_size

    size = check_pixel_size(pixel_size, "--pixel-size")
    if size is not None:
        return list(size)
    return spacings if any(s is not None for s in spacings) else None


def file_spacing(image) -> list[float] | None:
    """The spacing of a read image (:class:`~napari_res101unet.io.ImageData`) per spatial
    axis, or None when its file gives no unit (PNG/JPEG/BMP)."""
    from ..io._units import UNITLESS

    return list(image.spacing) if image.metadata.get("unit") not in UNITLESS else None
