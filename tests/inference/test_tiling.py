from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.inference.blending import blend_weights, extract_tile, reflect_indices
from napari_res101unet.inference.tiling import TilePlan, axis_starts, plan_tiles


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(2048, 512, 0.25), (775, 256, 0.25), (1000, 512, 0.5), (513, 512, 0.1), (600, 128, 0.0)],
)
def test_axis_starts_cover_with_the_overlap(length, tile, overlap):
    starts = axis_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    gaps = np.diff(starts)
    assert (gaps <= tile - np.ceil(overlap * tile)).all()
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered.all()


def test_same_tile_count_as_monai_on_2048():
    assert len(axis_starts(2048, 512, 0.25)) == 5  # MONAI's sliding window: 5 x 5
    assert axis_starts(300, 512, 0.25) == (0,)


def test_small_image_is_one_padded_pass():
    plan = plan_tiles((522, 775), budget_bytes=2**30, bytes_per_pixel=480)
    assert plan.whole_image and plan.tile == (544, 800)
    assert "whole slice" in plan.describe()


def test_large_image_is_tiled_within_the_budget():
    budget, bpp = 2**30, 480
    plan = plan_tiles((8192, 8192), budget_bytes=budget, bytes_per_pixel=bpp)
    assert not plan.whole_image
    assert plan.tile[0] * plan.tile[1] * plan.batch_size * bpp <= budget
    assert plan.tile[0] % 32 == 0 and plan.tile[1] % 32 == 0


def test_fixed_tile_and_batch_are_kept():
    plan = plan_tiles(
        (2048, 2048), budget_bytes=2**30, bytes_per_pixel=480, tile_size=512, batch_size=3
    )
    assert plan.tile == (512, 512) and plan.batch_size == 3 and plan.tiles_per_slice == 25
    assert plan.total_tiles == 25
    odd = plan_tiles((100, 100), budget_bytes=2**30, bytes_per_pixel=480, tile_size=70)
    assert odd.tile == (96, 96)


def test_stacks_batch_whole_slices():
    plan = plan_tiles((256, 256), 40, budget_bytes=2**30, bytes_per_pixel=480)
    assert plan.whole_image and plan.batch_size > 1 and plan.total_tiles == 40


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"overlap": 0.95}, "overlap must be a fraction"),
        ({"tile_size": 16}, "tile_size must be an int >= 32"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"blending": "linear"}, "blending must be one of"),
    ],
)
def test_bad_plan_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_tiles((100, 100), budget_bytes=2**30, bytes_per_pixel=480, **kwargs)


def test_gaussian_weights_peak_in_the_centre_and_stay_positive():
    plan = TilePlan((1000, 1000), 1, (256, 256), (0, 372, 744), (0, 372, 744), 1, 0.25)
    w = blend_weights(plan)
    assert w.shape == (256, 256) and w.min() > 0
    assert w[128, 128] == pytest.approx(w.max(), rel=1e-3)
    assert w[0, 0] < 1e-3
    single = TilePlan((100, 1000), 1, (128, 256), (0,), (0, 372, 744), 1, 0.25)
    ws = blend_weights(single)
    assert np.allclose(ws[:, 128], ws[0, 128])  # flat along the axis with one tile


def test_reflect_padding():
    assert reflect_indices(0, 4, 10) == slice(0, 4)
    assert reflect_indices(8, 4, 10).tolist() == [8, 9, 8, 7]
    assert reflect_indices(0, 5, 1).tolist() == [0] * 5
    image = np.arange(12).reshape(3, 4, 1)
    tile = extract_tile(image, 0, 0, (5, 6))
    assert tile.shape == (5, 6, 1)
    assert np.array_equal(tile[:3, :4], image)
    assert np.array_equal(tile[3:, :4, 0], image[[1, 0], :, 0])
