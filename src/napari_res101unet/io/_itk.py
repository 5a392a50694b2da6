"""NIfTI, NRRD, MetaImage, DICOM, PNG/JPEG/BMP through SimpleITK.

ITK's image is indexed ``(x, y, z)``; ``sitk.GetArrayFromImage`` gives the numpy array
``(z, y, x)``, which we keep as it is (no reorientation, no resampling). Spacing and
origin are reversed to match. The direction matrix is returned untouched, in ITK's own
convention, so that writing through :func:`write_itk` restores it exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._content import content_says_labels
from ._formats import METAIMAGE, NRRD, suffix
from ._image import ImageData, unit_spacing


def read_itk_file(path: Path) -> ImageData:
    """Read one file (NRRD, MetaImage, PNG, JPEG or BMP; NIfTI and DICOM have modules)."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    ext = suffix(path)
    if ext in (".jpg", ".jpeg"):
        _check_jpeg_complete(path)
    elif ext == ".bmp":
        _check_bmp_complete(path)
    img = reader.Execute()
    image = from_sitk(img)
    if ext in NRRD + METAIMAGE and image.data.ndim == img.GetDimension() + 1 and not image.rgb:
        _components_first(image, img)
    return image


def _components_first(image: ImageData, img) -> None:
    """A vector NRRD/MetaImage (not RGB) as ``(C, Z, Y, X)``: the component axis first with
    a step of 1, so the spatial scales stay on the spatial axes (a 3D Slicer
    ``.seg.nrrd`` whose segments overlap holds one label layer per component)."""
    image.data = np.ascontiguousarray(np.moveaxis(image.data, -1, 0))
    image.spacing = (1.0, *image.spacing)
    image.origin = (0.0, *image.origin)
    image.metadata["units"] = ("", *(("mm",) * (len(image.spacing) - 1)))
    segments = _slicer_segments(img)
    if segments:
        image.metadata["segments"] = segments
    image.metadata.setdefault("notes", []).append(
        f"{image.data.shape[0]} components per voxel, shown as the first axis"
        + (" (3D Slicer segmentation layers: see metadata['segments'])" if segments else "")
    )


def read_plain(path: Path, *, named_labels: bool = False) -> ImageData:
    """PNG, JPEG or BMP: pixels only; spacing 1 and no direction (see the io notes).

    A palette PNG gives its indices when it is a label map (by name or by content: the
    usual way to store colour-coded masks) and its colours otherwise.
    """
    if suffix(path) == ".png" and _png_color_type(path) == 3:
        data = _read_palette_png(path, named_labels)
        image = ImageData(data, *unit_spacing(data, data.ndim == 3), rgb=data.ndim == 3)
    else:
        image = read_itk_file(path)
        image.spacing, image.origin = unit_spacing(image.data, image.rgb)
        image.metadata.pop("unit", None)
    image.direction = None
    return image


def write_itk(
    path: str,
    data: np.ndarray,
    *,
    spacing: tuple[float, ...],
    origin: tuple[float, ...],
    direction: tuple[float, ...] | None,
    rgb: bool,
    compress: bool,
) -> None:
    """Write ``data`` with its geometry (numpy axis order) in the format of ``path``."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(data), isVector=rgb)
    img.SetSpacing([float(s) for s in reversed(spacing)])
    img.SetOrigin([float(o) for o in reversed(origin)])
    if direction is not None and len(direction) == img.GetDimension() ** 2:
        img.SetDirection([float(d) for d in direction])
    sitk.WriteImage(img, path, useCompression=compress)


def from_sitk(img) -> ImageData:
    import SimpleITK as sitk

    data = sitk.GetArrayFromImage(img)
    components = img.GetNumberOfComponentsPerPixel()
    rgb = components in (3, 4) and data.dtype == np.uint8
    return ImageData(
        data,
        tuple(float(s) for s in reversed(img.GetSpacing())),
        tuple(float(o) for o in reversed(img.GetOrigin())),
        tuple(float(d) for d in img.GetDirection()),
        rgb=rgb,
        metadata={"unit": "mm"},
    )


def _slicer_segments(img) -> dict[str, dict[str, int]]:
    """3D Slicer's ``Segment<i>_Name/_Layer/_LabelValue`` keys: name -> layer and value."""
    keys, get = set(img.GetMetaDataKeys()), img.GetMetaData
    segments: dict[str, dict[str, int]] = {}
    i = 0
    while f"Segment{i}_Name" in keys:
        layer, value = (get(f"Segment{i}_{k}") if f"Segment{i}_{k}" in keys else ""
                        for k in ("Layer", "LabelValue"))  # fmt: skip
        try:
            found = {"layer": int(layer or 0), "value": int(value or 1)}
        except ValueError:
            return {}  # not Slicer's keys after all
        segments[get(f"Segment{i}_Name")] = found
        i += 1
    return segments


def _check_jpeg_complete(path: Path) -> None:
    """libjpeg only warns on a truncated JPEG and fills the rest with grey."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(0, fh.tell() - 1024))
        if b"\xff\xd9" not in fh.read():
            raise ValueError("the JPEG has no end-of-image marker (truncated?)")


def _check_bmp_complete(path: Path) -> None:
    """ITK reads a truncated BMP without complaint; the header states the file size."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    size, stated = path.stat().st_size, int.from_bytes(head[2:], "little")
    if len(head) == 6 and head[:2] == b"BM" and size < stated:
        raise ValueError(f"the BMP is truncated: {size} of {stated} bytes")


def _png_color_type(path: Path) -> int | None:
    with open(path, "rb") as fh:
        head = fh.read(26)
    return head[25] if len(head) == 26 and head[12:16] == b"IHDR" else None


def _read_palette_png(path: Path, named_labels: bool) -> np.ndarray:
    from PIL import Image  # Pillow comes with scikit-image; ITK expands palettes to RGB

    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"{path.name}: Pillow refuses it as a decompression bomb ({exc})"
        ) from None
    with im:
        im.load()
        indices = np.asarray(im) if im.mode == "P" else None
        if indices is not None and (named_labels or content_says_labels(indices)):
            return indices.copy()
        return np.asarray(im.convert("RGBA" if "transparency" in im.info else "RGB")).copy()
