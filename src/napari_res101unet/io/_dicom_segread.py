"""DICOM SEG read as a label map (highdicom), on its source series' grid when found.

A SEG stores frames only where a segment is present, so its own frames rarely cover the
scan (7 frames of a 12-slice CT). When the series it references
(``ReferencedSeriesSequence``) lies in the SEG's folder or a sibling folder, the labels
are laid on that series' slices (same shape, spacing, origin and direction as the image
opened from it); otherwise on the grid of its own frames, and ``metadata["notes"]`` says
so. Segments are combined into one label map whose values are the segment numbers;
``metadata["segments"]`` maps each number to its label. Overlapping segments cannot be
one label map and are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._content import smallest_int_dtype
from ._image import ImageData

_SIBLING_LIMIT = 32


def read_seg(path: Path) -> ImageData:
    """Read a DICOM SEG file as labels (see the module notes)."""
    try:
        import highdicom as hd
    except ImportError:
        raise ValueError(
            "it is a DICOM SEG; reading it needs highdicom (pip install highdicom)"
        ) from None

    _check_byte_order(path)
    seg = hd.seg.segread(str(path))
    numbers = list(seg.segment_numbers)
    segments = {n: str(seg.get_segment_description(n).segment_label) for n in numbers}
    source = _find_source(path, seg)
    try:
        image = _on_own_frames(seg) if source is None else _on_source(seg, source)
    except ValueError as exc:
        if "overlap" in str(exc).lower():
            raise ValueError("its segments overlap, so they cannot form one label map") from None
        raise
    image.is_labels = True
    image.data = image.data.astype(smallest_int_dtype(image.data), copy=False)
    image.metadata.update(
        modality="SEG",
        segments=segments,
        referenced_series=_referenced_uid(seg),
    )
    return image


def _check_byte_order(path: Path) -> None:
    """highdicom reads little-endian files only; say so in our words, naming the cure."""
    from ._dicom_header import big_endian, header

    ds = header(path)
    if ds is not None and big_endian(ds):
        raise ValueError(
            "it is a DICOM SEG stored in big-endian byte order (Explicit VR Big Endian, "
            "retired from DICOM in 2004), which highdicom cannot read; convert it to "
            "little endian first (e.g. dcmtk: dcmconv +te in.dcm out.dcm)"
        )


def _on_source(seg, source) -> ImageData:
    """Labels on the referenced series' sorted slices."""
    files, geo, headers = source
    uids = [str(headers[i].SOPInstanceUID) for i in geo.order]
    labels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, combine_segments=True, relabel=False
    )
    image = ImageData(
        np.asarray(labels), geo.spacing, geo.origin, geo.direction, metadata={"unit": "mm"}
    )
    image.metadata["geometry_source"] = f"the source series in {files[0].parent}"
    return image


def _on_own_frames(seg) -> ImageData:
    volume = seg.get_volume(combine_segments=True, relabel=False)
    affine = np.asarray(volume.affine, float)  # LPS, (slice, row, column) -> mm
    array = np.asarray(volume.array)
    normal = np.cross(affine[:3, 2], affine[:3, 1])  # row x column direction, as a series
    if float(affine[:3, 0] @ normal) < 0:  # slices stored against the normal: flip them
        affine[:3, 3] += affine[:3, 0] * (array.shape[0] - 1)
        affine[:3, 0] *= -1
        array = array[::-1]
    cols = affine[:3, :3]
    spacing = np.linalg.norm(cols, axis=0)
    direction = (cols / spacing)[:, ::-1]  # ITK columns: x (column), y (row), z (slice)
    image = ImageData(
        np.ascontiguousarray(array),
        tuple(float(s) for s in spacing),
        tuple(float(v) for v in affine[:3, 3][::-1]),
        tuple(float(v) for v in direction.reshape(-1)),
        metadata={"unit": "mm"},
    )
    image.metadata["notes"] = [
        "the SEG's source series was not found next to it; the labels lie on the grid of "
        "the SEG's own frames, which covers only the segmented slices"
    ]
    return image


def _referenced_uid(seg) -> str | None:
    refs = seg.get("ReferencedSeriesSequence")
    return str(refs[0].SeriesInstanceUID) if refs else None


def _find_source(path: Path, seg):
    """``(files, geometry, headers)`` of the referenced series near ``path``, or None."""
    from ._dicom_series import scan_folder, stack_of

    uid = _referenced_uid(seg)
    if uid is None:
        return None
    parent = path.parent
    folders = [parent, *sorted(p for p in parent.parent.iterdir() if p.is_dir() and p != parent)]
    for folder in folders[:_SIBLING_LIMIT]:
        for series in scan_folder(folder):
            if series.uid == uid and series.kind == "image":
                return series.files, stack_of(series), series.headers
    return None
