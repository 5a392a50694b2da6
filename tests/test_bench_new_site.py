"""``benchmarks/bench_new_site.py``'s helpers: the window a user applies, the orientation
of the MSD slices, the choice of the slices to correct; the new site as the model sees it."""

from __future__ import annotations

import sys
from argparse import Namespace

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_new_site as bench

LPS = (1, 0, 0, 0, 1, 0, 0, 0, 1)
RAS = (-1, 0, 0, 0, -1, 0, 0, 0, 1)  # a NIfTI with a diagonal affine, as the reader gives it


def test_the_window_maps_its_ends_to_0_and_255_and_clips_outside():
    hu = np.array([-1000, -150, 50, 250, 3000])
    grey = bench.window_to_uint8(hu, 400, 50)
    assert (
        grey.dtype == np.uint8 and grey.tolist()[:2] == [0, 0] and grey.tolist()[3:] == [255] * 2
    )
    assert grey[2] in (127, 128)  # the level: mid-grey
    for width, level in ((0, 50), (-10, 50), (400, float("nan"))):
        with pytest.raises(ValueError, match="window width"):
            bench.window_to_uint8(hu, width, level)


def _marked(z=2, y=4, x=5):
    """A stack with one pixel marked at the patient's right-anterior corner in LPS order."""
    a = np.zeros((z, y, x), int)
    a[:, 0, 0] = 1  # LPS index 0,0: the most right and most anterior voxel
    return a


def test_radiological_puts_anterior_on_top_and_the_patients_right_on_the_left():
    lps = _marked()
    np.testing.assert_array_equal(bench.radiological(lps, LPS), lps)
    ras = lps[:, ::-1, ::-1]  # the same patient stored along RAS axes
    np.testing.assert_array_equal(bench.radiological(ras, RAS), lps)
    with pytest.raises(ValueError, match="axis-aligned"):
        bench.radiological(lps, (0, 1, 0, 1, 0, 0, 0, 0, 1))


def test_msd_orientations_put_the_right_side_and_the_spine_where_the_jpegs_have_them():
    rad = _marked()
    flipped = bench.as_msd(rad, "flipped")  # liver (patient's right) on top, anterior right
    assert flipped.shape == (2, 5, 4) and flipped[0, 0, -1] == 1
    mirrored = bench.as_msd(rad, "mirrored")  # liver at the bottom, anterior left
    assert mirrored.shape == (2, 5, 4) and mirrored[0, -1, 0] == 1
    np.testing.assert_array_equal(mirrored, flipped[:, ::-1, ::-1])  # a half turn apart
    assert bench.as_msd(rad, "none") is rad
    with pytest.raises(ValueError, match="flipped, mirrored, none"):
        bench.as_msd(rad, "sideways")


def test_refinement_slices_sit_at_a_quarter_half_and_three_quarters_of_the_range():
    assert bench.refine_slices(np.arange(30)) == [7, 14, 22]
    assert bench.refine_slices([3, 5, 9, 10, 20]) == [9, 10, 20]  # nearest to 7.25, 11.5, 15.75
    assert bench.refine_slices([1, 2, 3, 4], 3) == [2, 3, 4]  # distinct even when crowded
    with pytest.raises(ValueError, match="need more than 3"):
        bench.refine_slices([1, 2, 3])


def test_pixel_scale_and_bad_arguments_fail_before_training():
    assert bench.pixel_scale(3.0, 1.5) == 2.0
    with pytest.raises(ValueError, match="> 0"):
        bench.pixel_scale(3.0, 0)
    with pytest.raises(ValueError, match="window width"):
        bench.parse_args(["--out", "x", "--window", "0", "40"])


def test_body_extent_spans_the_largest_dark_grey_region():
    gray = np.zeros((64, 80), np.uint8)
    gray[10:50, 20:70] = 12  # fat, dark but above the air
    gray[20:30, 30:40] = 0  # air inside (bowel): filled
    gray[55:60, 0:5] = 200  # the table: a smaller component, left out
    assert bench.body_extent(gray) == (40, 50)
    assert bench.body_extent(np.zeros((8, 8), np.uint8)) == (0, 0)


def test_the_new_site_is_fed_like_the_msd_slices(data_dir):
    args = Namespace(window=[400.0, 50.0], orientation="flipped", pixel_size=1.5, liver_label=5)
    images, labels, z, info = bench.new_site(data_dir, args)
    assert len(z) == info["liver_slices"] == 30 and images.shape[-1] == 3
    assert images.shape[1:3] == labels.shape[1:] == (244, 202)  # 122x101 at 3 mm, turned
    assert images.dtype == np.uint8 and labels.max() == 1
    rows = np.nonzero(labels.any(axis=2))[1]
    assert rows.mean() < images.shape[1] / 2  # liver on top, as in every flipped_* slice
    assert "not a manual" in info["labels_note"]
    rows, cols = bench.median_extent(images)  # the MSD flipped slices: about 219 x 174
    assert 200 < rows < 240 and 160 < cols < 195
