"""The fast paths of the distance-transform watershed give what the plain calls give:
``_edt32`` is scipy's EDT in float32, ``_maxima`` (component by component) the seeds of
``h_maxima`` over the whole image, ``seeded_watershed`` (component by component) objects
that do not depend on the rest of the image; and a block drops only the specks that
stitching would drop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import h_maxima

from napari_res101unet.config import SegmentSettings
from napari_res101unet.inference.block_objects import drop_specks, local_objects
from napari_res101unet.postprocess.instances import (
    InstanceOptions,
    _edt32,
    _maxima,
    instances_from,
    seeded_watershed,
)


def blobs(shape=(300, 400), seed=0, sigma=4.0, level=0.55) -> np.ndarray:
    """Touching, ragged blobs and specks: smoothed noise above a level."""
    noise = np.random.default_rng(seed).random(shape)
    smooth = ndimage.gaussian_filter(noise, sigma)
    return smooth > np.quantile(smooth, level)


@pytest.mark.parametrize("shape", [(300, 400), (24, 60, 50)])
def test_edt32_is_scipys_edt_in_float32(shape):
    mask = blobs(shape, sigma=2.0)
    expected = ndimage.distance_transform_edt(mask).astype(np.float32)
    assert np.array_equal(_edt32(mask), expected)
    assert np.array_equal(_edt32(np.ones((5, 7), bool)), ndimage.distance_transform_edt(
        np.ones((5, 7), bool)).astype(np.float32))  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seeds_component_by_component_are_those_of_the_whole_image(seed):
    fg = blobs(seed=seed, sigma=3.0)
    edt = ndimage.distance_transform_edt(fg)
    whole = h_maxima(np.where(fg, edt, 0.0), 2.0).astype(bool) & fg
    ours = _maxima(_edt32(fg), 2.0, fg, floor=1.0)
    assert np.array_equal(ours > 0, whole)
    assert ours.max() == ndimage.label(whole, np.ones((3, 3), bool))[1]
    tops = ndimage.maximum(edt, ndimage.label(fg, np.ones((3, 3), bool))[0],
                           np.arange(1, ours.max() + 1))  # fmt: skip
    assert (tops < 2).any() and ((tops >= 2) & (tops < 3)).any() and (tops >= 3).any()


def test_seeds_when_nothing_reaches_h():
    fg = np.zeros((40, 40), bool)
    fg[5:8, 5:30] = True  # 3 px thick: EDT top 2 < 1 + h, as its only component
    fg[20, 3:20] = True  # 1 px thick: top 1
    edt = ndimage.distance_transform_edt(fg)
    whole = h_maxima(np.where(fg, edt, 0.0), 2.5).astype(bool) & fg
    assert np.array_equal(_maxima(_edt32(fg), 2.5, fg, floor=1.0) > 0, whole)


def test_a_components_objects_do_not_depend_on_the_others():
    fg = blobs(seed=3, sigma=3.0)
    edt = _edt32(fg)
    seeds = _maxima(edt, 2.0, fg, floor=1.0)
    labels = seeded_watershed(-edt, seeds, fg)
    components, n = ndimage.label(fg, np.ones((3, 3), bool))
    assert (labels[fg] > 0).all() and not labels[~fg].any()
    for i in range(1, n + 1):
        own = components == i
        alone = seeded_watershed(-edt, np.where(own, seeds, 0), own)
        pairs = np.unique(np.stack([labels[own], alone[own]]), axis=1)  # same partition
        assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def test_one_seed_floods_its_4_connected_pixels_the_rest_is_its_own_object():
    fg = np.zeros((20, 20), bool)
    fg[2:8, 2:8] = True
    fg[8:14, 8:14] = True  # touches the first square at one corner only
    seeds = np.zeros(fg.shape, np.int64)
    seeds[4, 4] = 1
    labels = seeded_watershed(-_edt32(fg), seeds, fg)
    assert (labels[2:8, 2:8] == 1).all() and (labels[8:14, 8:14] == 2).all()


def test_the_watershed_objects_match_plain_calls_on_a_noisy_image():
    """instances_from with the fast paths against the same steps with plain calls."""
    fg = blobs((256, 256), seed=4, sigma=1.5, level=0.5)
    filled = ndimage.binary_fill_holes(fg)
    edt = ndimage.distance_transform_edt(filled)
    from skimage.measure import label
    from skimage.segmentation import watershed

    seeds = ndimage.label(h_maxima(np.where(filled, edt, 0.0), 2.0).astype(bool) & filled,
                          np.ones((3, 3), bool))[0]  # fmt: skip
    plain = watershed(-edt, markers=seeds, mask=filled)
    missed = filled & (plain == 0)
    extra = ndimage.label(missed, np.ones((3, 3), bool))[0]
    plain[missed] = extra[missed] + plain.max()
    plain = label(np.where(fg, plain, 0), background=0, connectivity=2)
    ours = instances_from(fg, InstanceOptions(method="watershed", fill_holes=False))
    edt32 = _edt32(filled)
    fast = seeded_watershed(-edt32, _maxima(edt32, 2.0, filled, floor=1.0), filled)
    ours_filled = label(np.where(fg, fast, 0), background=0, connectivity=2)
    assert ours.max() > 20
    # the same objects up to the watershed's ties between seeds of equal height (over the
    # whole image scikit-image breaks them in the order of its heap)
    assert abs(int(ours_filled.max()) - int(plain.max())) <= 0.01 * plain.max()
    matched = sum(np.bincount(plain[ours_filled == i]).max() >= 0.9 * (ours_filled == i).sum()
                  for i in range(1, ours_filled.max() + 1))  # fmt: skip
    assert matched >= 0.95 * ours_filled.max()


def test_a_block_drops_only_specks_that_touch_no_edge():
    labels = np.zeros((64, 64), np.uint8)
    labels[10:12, 10:12] = 1  # 4 px speck inside: dropped
    labels[0:2, 30:32] = 1  # 4 px speck on the top edge: kept (may grow by merging)
    labels[30:37, 30:37] = 1  # a 7x7 ring: 24 px, 49 with its hole: kept at 40
    labels[32:35, 32:35] = 0
    labels[50:60, 5:15] = 1  # 100 px: kept
    out = drop_specks(labels, 40)
    assert not out[10:12, 10:12].any() and out[0:2, 30:32].all()
    assert out[30:37, 30].all() and out[50:60, 5:15].all()
    assert drop_specks(labels, 0) is labels
    ids, found = local_objects(labels, SegmentSettings(instances=True, min_object_size=40), None)
    assert found.count == 3 and ids[10, 10] == 0
