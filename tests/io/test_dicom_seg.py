"""DICOM SEG: written with highdicom for a CT series made with pydicom, read back with
highdicom, pydicom and our own reader; the geometry must be the source series'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

from dicom_helpers import ORIGIN, SPACING, THICKNESS, ct_series  # noqa: E402
from napari_res101unet.io import read_image  # noqa: E402
from napari_res101unet.io._dicom_seg import (  # noqa: E402
    algorithm_identity,
    source_series,
    write_dicom_seg,
)


@pytest.fixture
def ct_folder(tmp_path) -> Path:
    ct_series(tmp_path / "ct")
    return tmp_path / "ct"


CLASSES = ["background", "liver", "tumour"]


def _labels(shape) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[1:3, 4:12, 5:15] = 1
    labels[2, 6:9, 6:9] = 2
    return labels


def test_seg_round_trip_frames_segments_and_geometry(ct_folder, tmp_path):
    image = read_image(ct_folder)
    labels = _labels(image.data.shape)
    out = write_dicom_seg(
        tmp_path / "seg.dcm", labels, ct_folder, class_names=CLASSES,
        algorithm_name="liver model", algorithm_version="napari-res101unet 0.1.0 sha256:abc",
    )  # fmt: skip
    seg = hd.seg.segread(out)
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert [seg.get_segment_description(n).SegmentLabel for n in (1, 2)] == CLASSES[1:]
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == (
        "liver model",
        "napari-res101unet 0.1.0 sha256:abc",
    )

    # Referenced series and frames: labels[k] is on source slice k of our reader.
    sources = source_series(ct_folder)
    source_uids = [ds.SOPInstanceUID for ds in sources]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    back = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=source_uids, combine_segments=True
    )
    np.testing.assert_array_equal(back, labels)

    # Geometry of every frame (pydicom) against the source slices and our reader.
    raw = pydicom.dcmread(out)
    shared = raw.SharedFunctionalGroupsSequence[0]
    measures = shared.PixelMeasuresSequence[0]
    np.testing.assert_allclose([float(v) for v in measures.PixelSpacing], SPACING)
    np.testing.assert_allclose(image.spacing[1:], SPACING)
    orientation = shared.PlaneOrientationSequence[0].ImageOrientationPatient
    np.testing.assert_allclose([float(v) for v in orientation], [1, 0, 0, 0, 1, 0])
    positions = {}
    for frame in raw.PerFrameFunctionalGroupsSequence:
        ref = frame.DerivationImageSequence[0].SourceImageSequence[0]
        pos = [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        positions[ref.ReferencedSOPInstanceUID] = pos
    for k, ds in enumerate(sources):
        expected = [ORIGIN[0], ORIGIN[1], ORIGIN[2] + THICKNESS * k]
        np.testing.assert_allclose(positions[ds.SOPInstanceUID], expected, atol=1e-4)
        # our reader: origin + k * spacing along Z, in numpy (Z, Y, X) order
        reader_xyz = [image.origin[2], image.origin[1], image.origin[0] + k * image.spacing[0]]
        np.testing.assert_allclose(positions[ds.SOPInstanceUID], reader_xyz, atol=1e-4)


def test_seg_of_sorted_series_even_when_files_are_shuffled(ct_folder):
    sources = source_series(ct_folder)
    z = [float(ds.ImagePositionPatient[2]) for ds in sources]
    assert z == sorted(z) and len(z) == 4
    image = read_image(ct_folder)
    hu = np.stack([pydicom.dcmread(ds.filename).pixel_array for ds in sources]) - 1024
    np.testing.assert_array_equal(image.data, hu)


def test_seg_for_a_non_dicom_image_is_a_clear_error(tmp_path):
    nifti = tmp_path / "ct.nii.gz"
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 8, 8), np.int16)), str(nifti))
    with pytest.raises(ValueError, match="no DICOM images.*DICOM SEG needs the source DICOM"):
        write_dicom_seg(
            tmp_path / "seg.dcm", np.zeros((2, 8, 8), np.uint8), nifti,
            class_names=CLASSES, algorithm_name="m", algorithm_version="1",
        )  # fmt: skip
    assert not (tmp_path / "seg.dcm").exists()


def test_seg_rejects_labels_off_the_series_grid_or_without_names(ct_folder, tmp_path):
    kwargs = {"class_names": CLASSES, "algorithm_name": "m", "algorithm_version": "1"}
    with pytest.raises(ValueError, match=r"do not match the DICOM series \(4 slices of 24 x 20"):
        write_dicom_seg(tmp_path / "a.dcm", np.zeros((3, 24, 20), np.uint8), ct_folder, **kwargs)
    labels = np.full((4, 24, 20), 3, np.uint8)
    with pytest.raises(ValueError, match="only 3 class names"):
        write_dicom_seg(tmp_path / "b.dcm", labels, ct_folder, **kwargs)
    (tmp_path / "c.dcm").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        write_dicom_seg(tmp_path / "c.dcm", _labels((4, 24, 20)), ct_folder, **kwargs)


def test_algorithm_identity_names_the_checkpoint(tmp_path):
    class Spec:
        name = "liver"

    class Model:
        spec = Spec()
        checkpoint_path = str(tmp_path / "m.safetensors")

    Path(Model.checkpoint_path).write_bytes(b"weights")
    name, version = algorithm_identity(Model())
    assert name == "liver"
    assert version.startswith("napari-res101unet ") and "sha256:" in version


def test_seg_describes_every_class_even_when_nothing_is_found(ct_folder, tmp_path):
    out = write_dicom_seg(
        tmp_path / "empty.dcm", np.zeros((4, 24, 20), np.uint8), ct_folder,
        class_names=CLASSES, algorithm_name="m", algorithm_version="1",
    )  # fmt: skip
    seg = hd.seg.segread(out)
    assert [d.SegmentLabel for d in seg.SegmentSequence] == CLASSES[1:]
    sources = [ds.SOPInstanceUID for ds in source_series(ct_folder)]
    back = seg.get_pixels_by_source_instance(sources, combine_segments=True)
    assert back.shape == (4, 24, 20) and not back.any()


def test_our_reader_opens_the_written_seg_on_its_source_grid(ct_folder, tmp_path):
    image = read_image(ct_folder)
    labels = _labels(image.data.shape)
    out = write_dicom_seg(
        tmp_path / "seg" / "seg.dcm", labels, ct_folder, class_names=CLASSES,
        algorithm_name="liver model", algorithm_version="0.1.0",
    )  # fmt: skip
    back = read_image(out)  # the source series is in a sibling folder
    assert back.is_labels
    np.testing.assert_array_equal(back.data, labels)
    np.testing.assert_allclose(back.spacing, image.spacing)
    np.testing.assert_allclose(back.origin, image.origin)
    np.testing.assert_allclose(back.direction, image.direction)
