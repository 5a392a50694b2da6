"""Which slices a foreground-centred patch comes from (issue 26)."""

import numpy as np

from napari_res101unet.preprocess.pairs import check_pairs, prepare
from napari_res101unet.training.patches import PatchSampler, foreground_weight


def test_objects_that_fit_a_patch_weigh_the_same_larger_areas_more():
    assert foreground_weight(10, 64) == foreground_weight(900, 64) == 64 * 64 / 4
    assert foreground_weight(64 * 64 * 3, 64) == 3 * foreground_weight(64 * 64, 64)


def test_a_slice_with_a_small_object_is_drawn_as_often_as_one_with_a_large_one():
    image = np.zeros((64, 64), np.uint8)
    small, large = np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)
    small[30:33, 30:33] = 1  # 9 pixels
    large[8:40, 8:40] = 1  # 1024 pixels: both fit one 64-pixel patch
    sampler = PatchSampler(
        prepare(
            check_pairs([(image, small), (image, large)], ignore_index=None),
            ignore_index=None,
            in_channels=3,
            normalization={"mode": "auto"},
        ),
        64,
        1,
        foreground_fraction=1.0,
        augment=False,
    )
    table = sampler.by_class[1]
    assert np.allclose(table.weights, [0.5, 0.5])
    rng = np.random.default_rng(0)
    picks = [sampler._window(rng, 64)[0].index for _ in range(400)]
    assert 150 < picks.count(0) < 250  # by area it would be under 4 in 400
