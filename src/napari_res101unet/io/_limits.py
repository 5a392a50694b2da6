"""The size a file declares, checked against a pixel limit before any pixel is read.

A header can claim any size (a 29-byte ``.nii.gz`` can say 32767^3 voxels, a PNG header
100,000^2 pixels, a DICOM header Rows = Columns = 60,000); reading such a file would try
to allocate terabytes. DICOM folders count the chosen series' slices too. The limit counts
values (voxels times channels); the default, 2**31, holds large CT/MRI volumes and
whole-slide tiles. Raise it with ``read_image(..., max_pixels=N)`` or the environment
variable ``NAPARI_RES101UNET_MAX_PIXELS``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ._formats import DICOM, ITK_VOLUMES, NIFTI, PLAIN, READABLE, TIFF, is_dicom_file

ENV = "NAPARI_RES101UNET_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 2**31
GZIP_MAX_RATIO = 1032
"""deflate cannot inflate more than ~1032:1; a size trailer claiming more is forged."""
MAX_PACKAGE_YAML_BYTES = 1 << 20
"""A bioimage.io package's rdf.yaml (a few KiB in practice) is read up to 1 MiB."""
MAX_YAML_NODES = 100_000
"""YAML nodes an rdf.yaml may stand for once its aliases are expanded (an alias bomb of
a few hundred bytes stands for billions)."""
MAX_WEIGHTS_BYTES = 1 << 30
"""A package's pytorch_state_dict is read up to 1 GiB (Res101_UNet's is ~200 MB)."""


def max_pixels(given: int | None = None) -> int:
    """The pixel limit: ``given``, else ``$NAPARI_RES101UNET_MAX_PIXELS``, else 2**31."""
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise ValueError(f"max_pixels must be a positive int, got {given!r}")
        return given
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV}={text!r} is not a positive whole number (e.g. 4294967296)")
    return value


def check_declared_size(path: Path, ext: str, limit: int) -> None:
    """Raise ValueError when the header of ``path`` declares more than ``limit`` values."""
    shape = declared_shape(path, ext)
    if shape is not None:
        check_count(str(path), shape, limit)


def check_count(what: str, shape, limit: int) -> None:
    """Raise ValueError naming ``what`` when ``shape`` holds more than ``limit`` values.

    Raises
    ------
    ValueError
        ``"<what> declares 1 x 60000 x 60000 = 3,600,000,000 values, over the limit..."``.
    """
    count = math.prod(int(n) for n in shape)
    if count > limit:
        dims = " x ".join(str(int(n)) for n in shape)
        raise ValueError(
            f"{what} declares {dims} = {count:,} values, over the limit of {limit:,} "
            "(a forged or damaged header?). If the file is genuine, raise the limit: "
            f"read_image(..., max_pixels=N) or the environment variable {ENV}=N"
        )


def declared_shape(path: Path, ext: str) -> tuple[int, ...] | None:
    """The array shape a file's header declares (read without its pixels); None when the
    format is not checked here. DICOM: ``(frames, rows, columns[, samples])``."""
    if ext in DICOM or (ext not in READABLE and is_dicom_file(path)):
        from ._dicom_header import declared_values, header

        ds = header(path)
        return None if ds is None else declared_values(ds)
    if ext in NIFTI:
        return tuple(int(n) for n in nifti_header(path).get_data_shape())
    if ext in TIFF:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return tuple(tif.series[0].shape) if tif.series else None
    if ext in PLAIN or ext in ITK_VOLUMES:
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return (*reader.GetSize(), reader.GetNumberOfComponents())
    return None


def nifti_header(path: Path):
    """The NIfTI-1/2 header of ``path`` (a nibabel header), from its first bytes only: no
    gzip trailer check, no data read."""
    import zlib

    import nibabel as nib

    with open(path, "rb") as fh:
        raw = fh.read(1 << 16)
        whole = fh.read(1) == b""
    if path.name.lower().endswith(".gz"):
        # a small file's CRC and size trailer are left out here: they are checked later
        try:
            head = zlib.decompressobj(wbits=31).decompress(raw[:-8] if whole else raw, 540)
        except zlib.error as exc:
            raise ValueError(f"not a gzip-compressed NIfTI file ({exc})") from None
    else:
        head = raw[:540]
    for order in ("little", "big"):
        cls = {348: nib.Nifti1Header, 540: nib.Nifti2Header}.get(int.from_bytes(head[:4], order))
        if cls is not None and len(head) >= cls.template_dtype.itemsize:
            break
    else:
        raise ValueError("not a NIfTI file (no valid NIfTI-1 or NIfTI-2 header)")
    try:  # the fixed header only: extensions (label tables, XML) lie past these bytes
        return cls(head[: cls.template_dtype.itemsize], check=True)
    except Exception as exc:  # nibabel's HeaderDataError and friends
        raise ValueError(f"its NIfTI header is not valid: {exc}") from None


def gzip_size(path: Path, expected: int) -> int:
    """Uncompressed size of a gzip file, counted no further than ``expected`` bytes.

    The size trailer answers when it matches and is possible for the file's compressed
    size; otherwise the stream is inflated (bounded: never more than ``expected`` bytes
    counted, never more than 4 MiB held)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        if size < 18:
            return 0
        fh.seek(-4, 2)
        trailer = int.from_bytes(fh.read(4), "little")
        if trailer == expected % (1 << 32) and expected <= GZIP_MAX_RATIO * size:
            return expected
        fh.seek(0)
        return _inflated_size(fh, expected)


def _inflated_size(fh, limit: int) -> int:
    import zlib

    total, stream = 0, zlib.decompressobj(wbits=31)
    try:
        while chunk := fh.read(1 << 20):
            while chunk:
                total += len(stream.decompress(chunk, 1 << 22))
                if total >= limit:
                    return total
                if stream.eof:  # another gzip member may follow
                    chunk, stream = stream.unused_data, zlib.decompressobj(wbits=31)
                else:
                    chunk = stream.unconsumed_tail
    except zlib.error as exc:
        raise ValueError(f"the gzip stream is damaged or truncated ({exc})") from None
    return total
