"""Whether a TIFF's pixel data is really in the file, checked from its headers only.

A TIFF header can declare 100,000 x 100,000 pixels in a 122-byte file; opened lazily, it
looks like a whole-slide image until a block is read (then tifffile or zarr fails deep
inside a worker). Every strip or tile of the first series' full-resolution pages must lie
inside the file, and uncompressed pages must hold all their bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_PAGES_CHECKED = 100_000
"""Pages of level 0 whose strips and tiles are checked (a Z-stack's slices)."""


def tiff_problem(tif: Any) -> str | None:
    """What is wrong with the pixel data of ``tif`` (a ``tifffile.TiffFile``), or None.

    Parameters
    ----------
    tif : tifffile.TiffFile
        An open file; only its page headers are read.

    Returns
    -------
    str or None
        E.g. ``"its header declares 100000 x 100000 uint8 pixels (10.0 GB), but its
        pixel data would lie beyond the end of the 122-byte file"``.
    """
    if not tif.series:
        return "it holds no image series"
    series = tif.series[0]
    size = int(tif.filehandle.size)
    pages = [p for p in (series.levels[0].pages or []) if p is not None]
    for page in pages[:MAX_PAGES_CHECKED]:
        offsets = [int(o) for o in getattr(page, "dataoffsets", ()) or ()]
        counts = [int(c) for c in getattr(page, "databytecounts", ()) or ()]
        beyond = any(o + c > size for o, c in zip(offsets, counts) if c)
        whole_bytes = int(getattr(page, "bitspersample", 8) or 8) % 8 == 0
        raw = int(getattr(page, "compression", 1)) == 1 and whole_bytes
        short = raw and sum(counts) < int(page.nbytes)
        if beyond or short:
            shape = " x ".join(str(int(n)) for n in series.shape)
            declared = int(series.size) * series.dtype.itemsize
            where = "beyond the end of" if beyond else "partly outside"
            return (
                f"its header declares {shape} {series.dtype} pixels "
                f"({declared / 1e9:.1f} GB), but its pixel data would lie {where} the "
                f"{size:,}-byte file (a forged or truncated TIFF)"
            )
    return None


def check_tiff(path: Path) -> None:
    """Refuse a TIFF whose declared pixels are not in the file, before any block is read.

    Raises
    ------
    ValueError
        Naming ``path`` and the problem (see :func:`tiff_problem`).
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            problem = tiff_problem(tif)
    except Exception as exc:  # tifffile's own errors on a damaged header
        raise ValueError(f"{path.name} is not a readable TIFF: {exc}") from None
    if problem:
        raise ValueError(f"{path}: {problem}")
