"""Labels as a DICOM Segmentation object (highdicom) referencing their source series.

The SEG is written for the series that :func:`~napari_res101unet.io.read_image` reads
from a DICOM folder: the largest series, slices sorted along the slice normal (as GDCM
sorts them), so ``labels[k]`` lies on the ``k``-th slice of the image that was
segmented. One segment per foreground class of the model, found in the image or not
(label value ``v`` is segment ``v``), named from the model's class names, with the
algorithm identification of the checkpoint.
Segments carry the generic SNOMED CT codes *Tissue* / *Tissue* (no organ codes are
known here); the segment labels say what they are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_target, file_sha256

__all__ = ["algorithm_identity", "check_seg_source", "source_series", "write_dicom_seg"]

SEG_COPIED = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "SliceThickness",
)  # fmt: skip
"""Attributes highdicom copies from every source slice into a SEG: they must be present
(type 2: they may be empty)."""
SEG_NEEDED = ("Modality", "Rows", "Columns", "PixelSpacing", "ImagePositionPatient",
              "ImageOrientationPatient")  # fmt: skip
"""Attributes highdicom needs with a value."""


def write_dicom_seg(
    path: str | os.PathLike,
    labels: np.ndarray,
    source: str | os.PathLike | Sequence[Any],
    *,
    class_names: Sequence[str],
    algorithm_name: str,
    algorithm_version: str,
    series_description: str = "Res101_UNet segmentation",
    series_number: int = 300,
    manufacturer: str = "napari-res101unet",
    overwrite: bool = False,
) -> Path:
    """Write ``labels`` as a DICOM SEG (binary segments) for the source series.

    Parameters
    ----------
    path : path
        The ``.dcm`` file to write (atomically).
    labels : (Z, Y, X) or (Y, X) integer ndarray
        Label values ``0`` (background) to ``len(class_names) - 1``, on the grid of the
        series as ``read_image`` returns it (``Z`` = number of slices).
    source : path or sequence
        The DICOM folder the image was read from, a list of its files, or the pydicom
        datasets of the series.
    class_names : sequence of str
        One name per label value, background first (the model's ``spec.class_names``).
    algorithm_name, algorithm_version : str
        Identify the model (see :func:`algorithm_identity`).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError
        When the source is not a DICOM series (e.g. a NIfTI or TIFF image), when the
        labels do not match its slices and pixels, or hold values without a class name.
    """
    import highdicom as hd

    path = Path(path).expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True")
    datasets = check_seg_source(source)
    frames = _check_labels(labels, datasets, class_names)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, family=_codes().DCM.ArtificialIntelligence,
        version=algorithm_version,
    )  # fmt: skip
    values = list(range(1, len(class_names)))  # every class, found or not
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segments(class_names, values, algorithm),
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=manufacturer,
        manufacturer_model_name=algorithm_name[:64],
        software_versions=algorithm_version[:64],
        device_serial_number="none",
        series_description=series_description[:64],
        omit_empty_frames=False,
    )
    with atomic_target(path) as tmp:
        seg.save_as(tmp)
    return path


def _codes():
    from pydicom.sr.codedict import codes

    return codes


def _segments(class_names, values: list[int], algorithm) -> list:
    import highdicom as hd

    codes = _codes()
    return [
        hd.seg.SegmentDescription(
            segment_number=v,
            segment_label=str(class_names[v])[:64],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for v in values
    ]


def _check_labels(labels: np.ndarray, datasets: list, class_names: Sequence[str]) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim == 2:
        arr = arr[None]
    rows, cols = int(datasets[0].Rows), int(datasets[0].Columns)
    expected = (len(datasets), rows, cols)
    if arr.shape != expected:
        raise ValueError(
            f"labels of shape {np.shape(labels)} do not match the DICOM series "
            f"({expected[0]} slices of {rows} x {cols} pixels)"
        )
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise ValueError(f"labels must be integers, got {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= len(class_names)):
        raise ValueError(
            f"labels hold values {int(arr.min())}..{int(arr.max())} but only "
            f"{len(class_names)} class names ({list(class_names)}) are given"
        )
    if len(class_names) < 2:
        raise ValueError("class_names must name the background and at least one class")
    dtype = np.uint8 if len(class_names) <= 256 else np.uint16
    return arr.astype(dtype)


def source_series(source: str | os.PathLike | Sequence[Any]) -> list:
    """The source series' datasets (headers only), sorted along the slice normal.

    Raises
    ------
    ValueError
        When ``source`` holds no DICOM images with a position and orientation.
    """
    import pydicom

    if isinstance(source, (str, os.PathLike)):
        datasets = _read_headers(Path(source))
    else:
        datasets = [s if isinstance(s, pydicom.Dataset) else _read_one(Path(s)) for s in source]
        datasets = [d for d in datasets if d is not None]
    images = [d for d in datasets if _is_image(d)]
    if not images:
        raise ValueError(
            f"{_describe(source)} holds no DICOM images with a position and orientation; "
            "DICOM SEG needs the source DICOM series (read from a DICOM folder)"
        )
    series: dict[str, list] = {}
    for d in images:
        series.setdefault(str(d.SeriesInstanceUID), []).append(d)
    largest = max(sorted(series), key=lambda uid: len(series[uid]))
    return sorted(series[largest], key=_position_along_normal)


def check_seg_source(source: str | os.PathLike | Sequence[Any]) -> list:
    """Check, before any segmentation, that a DICOM SEG can be written for ``source``.

    Parameters
    ----------
    source : path or sequence
        The DICOM folder (or its files, or their pydicom datasets), as for
        :func:`write_dicom_seg`.

    Returns
    -------
    list of pydicom.Dataset
        The series' headers, sorted along the slice normal.

    Raises
    ------
    ValueError
        When ``source`` holds no DICOM image series, or its slices lack attributes
        highdicom copies into the SEG (:data:`SEG_COPIED`, e.g. ``PatientBirthDate``) or
        needs with a value (:data:`SEG_NEEDED`); the message names the source, a file
        and every missing attribute.
    """
    datasets = source_series(source)
    missing: dict[str, str] = {}
    for ds in datasets:
        where = Path(str(getattr(ds, "filename", "") or "")).name or "a slice"
        for name in SEG_COPIED:
            if name not in ds:
                missing.setdefault(name, where)
        for name in SEG_NEEDED:
            if ds.get(name) in (None, "", []):
                missing.setdefault(name, where)
    if missing:
        first = next(iter(missing.values()))
        raise ValueError(
            f"cannot write a DICOM SEG for {_describe(source)}: its slices lack "
            f"{', '.join(missing)} (e.g. {first}), which a DICOM SEG copies from its "
            "source series; add them to the series (patient and study attributes may be "
            "empty, e.g. with pydicom: ds.PatientBirthDate = '') or write the labels as "
            "NIfTI (.nii.gz) instead"
        )
    return datasets


def _read_headers(path: Path) -> list:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [d for d in (_read_one(f) for f in files) if d is not None]


def _read_one(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError):
        return None


def _is_image(ds) -> bool:
    needed = ("ImagePositionPatient", "ImageOrientationPatient", "Rows", "SeriesInstanceUID")
    return all(k in ds for k in needed) and ds.get("Modality") != "SEG"


def _position_along_normal(ds) -> float:
    orient = np.asarray(ds.ImageOrientationPatient, float)
    normal = np.cross(orient[:3], orient[3:])
    return float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float)))


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"the {len(source)} given file(s)/dataset(s)"


def algorithm_identity(model: Any) -> tuple[str, str]:
    """``(name, version)`` identifying ``model`` in DICOM: its spec's name, and the
    plugin version plus the SHA-256 (first 16 hex digits) of the checkpoint file it was
    loaded from, when there is one."""
    from .. import __version__

    spec = getattr(model, "spec", None)
    name = str(getattr(spec, "name", None) or "Res101_UNet")
    version = f"napari-res101unet {__version__}"
    checkpoint = getattr(model, "checkpoint_path", None)
    if checkpoint and Path(checkpoint).is_file():
        version += f" sha256:{file_sha256(checkpoint)[:16]}"
    return name, version
