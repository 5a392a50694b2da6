"""DICOM series whose slices are not a regular volume, rescale, dose, colour, SEG.

Series are written slice by slice with pydicom (tests/io/dicom_factory.py) at chosen
positions, so the expected geometry is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from dicom_factory import (
    CORONAL,
    SAGITTAL,
    axial_positions,
    seg_for,
    series,
    stored_ct,
)

from napari_res101unet._reader import get_reader
from napari_res101unet.io import read_image


def test_regular_series_in_any_file_order_is_sorted_along_the_normal(tmp_path):
    stored = stored_ct()
    positions = axial_positions(6)
    series(tmp_path / "ct", stored[::-1], positions[::-1])  # files written top to bottom
    image = read_image(tmp_path / "ct")
    np.testing.assert_array_equal(image.data, stored.astype(np.int16) - 1024)
    assert image.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert image.origin == pytest.approx(positions[0][::-1])
    assert image.window == (-160.0, 240.0)
    assert image.metadata["unit"] == "mm" and image.metadata["units"] == ("mm",) * 3


def test_gantry_tilted_series_is_refused_with_the_angle_and_series(tmp_path):
    uid = series(tmp_path / "head", stored_ct(), axial_positions(6, tilt_deg=20))
    with pytest.raises(ValueError, match=r"gantry tilt of about 20\.0 degrees") as err:
        read_image(tmp_path / "head")
    assert uid in str(err.value) and "head" in str(err.value)


def test_series_with_a_missing_slice_is_refused(tmp_path):
    positions = [p for k, p in enumerate(axial_positions(7)) if k != 3]
    series(tmp_path / "gap", stored_ct(), positions)
    with pytest.raises(ValueError, match=r"not uniform.*1 missing slice.*35\.00 and 40\.00"):
        read_image(tmp_path / "gap")


def test_two_acquisitions_at_the_same_positions_are_refused(tmp_path):
    series(tmp_path / "echo", stored_ct(), axial_positions(3) * 2)
    with pytest.raises(ValueError, match="share a position"):
        read_image(tmp_path / "echo")


def test_localizer_planes_in_one_series_are_separate_series(tmp_path):
    uid, folder, stored = "1.2.826.0.1.3680043.8.498.77", tmp_path / "loc", stored_ct()
    series(folder, stored[:3], axial_positions(3), series_uid=uid, prefix="a")
    series(folder, stored[:2], [(0, -40 + 5 * k, 0) for k in range(2)], series_uid=uid,
           prefix="c", orientation=CORONAL)  # fmt: skip
    series(folder, stored[:2], [(-40 + 5 * k, 0, 0) for k in range(2)], series_uid=uid,
           prefix="s", orientation=SAGITTAL)  # fmt: skip

    image = read_image(folder)

    assert image.data.shape == (3, 16, 12)  # the axial plane only, never all 7 stacked
    assert image.metadata["series_count"] == 3
    listed = {s["orientation"]: s for s in image.metadata["series"]}
    assert set(listed) == {"axial", "coronal", "sagittal"}
    assert (
        "opened" in image.metadata["notes"][0]
        and listed["coronal"]["id"] in (image.metadata["notes"][0])
    )
    coronal = read_image(folder, series=listed["coronal"]["id"])
    assert coronal.data.shape == (2, 16, 12)
    assert coronal.direction == pytest.approx((1, 0, 0, 0, 0, 1, 0, -1, 0))
    assert coronal.origin == pytest.approx((0, -40, 0))
    with pytest.raises(ValueError, match="no series 'nope'"):
        read_image(folder, series="nope")


def test_per_slice_rescale_slope_gives_float_values(tmp_path):
    stored = stored_ct()
    slopes = [1.0, 1.0, 87.5, 1.0, 0.5, 1.0]
    series(tmp_path / "pet", stored, axial_positions(6), slopes=slopes, intercept=0.0)
    image = read_image(tmp_path / "pet")
    expected = stored.astype(np.float64) * np.array(slopes)[:, None, None]
    assert image.data.dtype.kind == "f"
    np.testing.assert_allclose(image.data, expected, rtol=1e-6)
    assert "per slice" in image.metadata["rescale"]


def test_seg_opens_as_labels_on_its_source_grid_with_segments(tmp_path):
    stored = stored_ct((12, 16, 12))
    series(tmp_path / "ct", stored, axial_positions(12))
    liver, tumour = np.zeros((2, 12, 16, 12), bool)
    liver[3:8, 4:8, 4:8], tumour[5:10, 9:12, 3:6] = True, True
    path = seg_for(tmp_path / "ct", tmp_path / "seg" / "seg.dcm", {1: liver, 2: tumour})

    data, kwargs, kind = get_reader(str(path))(str(path))[0]
    ct = read_image(tmp_path / "ct")

    assert kind == "labels" and data.shape == (12, 16, 12)
    np.testing.assert_array_equal(data, liver * 1 + tumour * 2)
    assert kwargs["metadata"]["segments"] == {1: "organ 1", 2: "organ 2"}
    assert kwargs["scale"] == pytest.approx(ct.spacing)
    assert kwargs["translate"] == pytest.approx(ct.origin)
    assert kwargs["metadata"]["direction"] == pytest.approx(ct.direction)


def test_seg_without_its_source_lies_on_its_own_frames(tmp_path):
    stored = stored_ct((12, 16, 12))
    series(tmp_path / "ct", stored, axial_positions(12))
    mask = np.zeros((12, 16, 12), bool)
    mask[3:10, 4:8, 4:8] = True
    path = seg_for(tmp_path / "ct", tmp_path / "a" / "b" / "seg.dcm", {1: mask})
    image = read_image(path)
    assert image.is_labels and image.data.shape == (7, 16, 12)
    np.testing.assert_array_equal(image.data, mask[3:10])
    assert image.origin == pytest.approx((30 + 3 * 2.5, -80, -100))
    assert "not found" in image.metadata["notes"][0]


def test_folder_with_a_series_and_its_seg_opens_the_image_and_lists_the_seg(tmp_path, monkeypatch):
    stored = stored_ct((6, 16, 12))
    series(tmp_path / "study", stored, axial_positions(6))
    mask = np.zeros((6, 16, 12), bool)
    mask[2:4, 3:9, 3:9] = True
    seg_for(tmp_path / "study", tmp_path / "study" / "zz_seg.dcm", {1: mask})
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_info", shown.append)

    ((data, kwargs, kind),) = get_reader(str(tmp_path / "study"))(str(tmp_path / "study"))

    assert kind == "image" and data.shape == (6, 16, 12)
    kinds = {s["kind"]: s for s in kwargs["metadata"]["series"]}
    assert set(kinds) == {"image", "seg"}
    assert shown and "2 series in this folder" in shown[0]  # the user is told
    seg = read_image(tmp_path / "study", series=kinds["seg"]["id"])
    assert seg.is_labels
    np.testing.assert_array_equal(seg.data, mask.astype(np.uint8))


def test_slices_without_positions_are_stacked_by_number_and_say_so(tmp_path):
    stored = stored_ct((3, 16, 12))
    series(tmp_path / "sc", stored[::-1], [None] * 3)  # written last-first, numbered 1..3
    image = read_image(tmp_path / "sc")
    np.testing.assert_array_equal(image.data, stored[::-1].astype(np.int16) - 1024)
    assert image.direction is None and image.spacing[0] == 1.0
    assert "no position in space" in image.metadata["notes"][0]


def test_a_slice_without_position_is_never_stacked_with_placed_ones(tmp_path):
    stored = stored_ct((3, 16, 12))
    series(tmp_path / "mixed", stored, [*axial_positions(2), None])
    image = read_image(tmp_path / "mixed")
    assert image.data.shape == (2, 16, 12) and image.metadata["series_count"] == 2
    assert "opened" in image.metadata["notes"][0]


def test_enhanced_multiframe_with_tilted_frames_is_refused(tmp_path):
    from dicom_factory import enhanced

    series(tmp_path / "reg", stored_ct(), axial_positions(6))
    series(tmp_path / "tilt", stored_ct(), axial_positions(6, tilt_deg=20))
    regular = enhanced(tmp_path / "reg", tmp_path / "regular_mf.dcm")
    tilted = enhanced(tmp_path / "tilt", tmp_path / "tilted_mf.dcm")

    image = read_image(regular)  # GDCM's geometry, the frames being regular
    assert image.data.shape == (6, 16, 12)
    with pytest.raises(ValueError, match=r"tilted_mf\.dcm \(multi-frame.*gantry tilt"):
        read_image(tilted)
