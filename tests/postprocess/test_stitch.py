"""Stitching instance ids across blocks: unique ids, objects cut by block edges merged,
the same objects as in memory."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_res101unet.postprocess.instances import InstanceOptions, instances_from
from napari_res101unet.postprocess.stitch import (
    Block,
    block_offsets,
    contact_pairs,
    local_ids,
    merge_table,
    offset_ids,
    overlap_pairs,
    relabel,
    stitch_blocks,
)

COMPONENTS = InstanceOptions(method="components", fill_holes=False)


def _blocks(image: np.ndarray, size: int, segment) -> list[Block]:
    return [
        Block((y, x), segment(image[y : y + size, x : x + size]))
        for y in range(0, image.shape[0], size)
        for x in range(0, image.shape[1], size)
    ]


def _same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label images hold the same objects under some renaming of ids."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.column_stack([a[a > 0], b[b > 0]]), axis=0)
    return len(pairs) == len(np.unique(a[a > 0])) == len(np.unique(b[b > 0]))


def test_an_object_on_the_corner_of_four_blocks_becomes_one():
    yy, xx = np.mgrid[:64, :64]
    image = (yy - 32) ** 2 + (xx - 32) ** 2 <= 100
    image[2:5, 2:5] = True  # and one object inside a single block
    blocks = _blocks(image, 32, lambda b: instances_from(b, COMPONENTS))
    assert sum(int(b.labels.max()) for b in blocks) == 5  # the disc cut in four
    out = stitch_blocks(blocks, image.shape)
    assert out.dtype == np.uint16 and out.max() == 2
    assert len(np.unique(out[(yy - 32) ** 2 + (xx - 32) ** 2 <= 100])) == 1


@pytest.mark.parametrize("seed", range(3))
def test_equals_the_in_memory_components(seed):
    rng = np.random.default_rng(seed)
    image = ndimage.binary_opening(rng.random((96, 100)) < 0.45)  # ragged last column
    full = instances_from(image, COMPONENTS)
    out = stitch_blocks(_blocks(image, 32, lambda b: instances_from(b, COMPONENTS)), image.shape)
    assert _same_objects(out, full)
    assert np.array_equal(np.unique(out), np.arange(out.max() + 1))  # unique, sequential


def test_diagonal_contacts_need_full_connectivity():
    image = np.zeros((4, 4), bool)
    image[1, 1] = image[2, 2] = True  # diagonal neighbours across the corner of 4 blocks
    blocks = _blocks(image, 2, lambda b: instances_from(b, COMPONENTS))
    assert stitch_blocks(blocks, image.shape).max() == 1
    assert stitch_blocks(blocks, image.shape, connectivity="face").max() == 2


def test_3d_blocks():
    volume = np.zeros((8, 8, 8), bool)
    volume[2:6, 2:6, 2:6] = True
    blocks = [
        Block((z, y, x), instances_from(volume[z : z + 4, y : y + 4, x : x + 4], COMPONENTS))
        for z in (0, 4) for y in (0, 4) for x in (0, 4)
    ]  # fmt: skip
    assert stitch_blocks(blocks, volume.shape).max() == 1


def test_watershed_instances_crossing_a_block_edge():
    # two touching discs; a third crosses the block edge: per-block watershed then
    # stitching keeps two objects left and one object across the edge
    yy, xx = np.mgrid[:64, :96]
    discs = [(yy - 20) ** 2 + (xx - cx) ** 2 <= 81 for cx in (12, 28)]
    crossing = (yy - 45) ** 2 + (xx - 48) ** 2 <= 100
    image = discs[0] | discs[1] | crossing
    full = instances_from(image)
    assert full.max() == 3
    out = stitch_blocks(_blocks(image, 48, instances_from), image.shape)
    assert _same_objects(out, full)


def test_shrinking_keeps_neighbours_that_meet_near_a_face_apart():
    low = np.array([[1, 1, 1, 2, 2, 2]])  # lower block's last row: objects 1 | 2
    high = np.array([[3, 3, 3, 3, 4, 4]])  # upper block's first row: 3 | 4, edge 1 px off
    assert contact_pairs(low, high, [0], connectivity="face").tolist() == [[1, 3], [2, 3], [2, 4]]
    assert contact_pairs(low, high, [0], connectivity="face", shrink=1).tolist() == [
        [1, 3], [2, 4]
    ]  # fmt: skip


def test_overlap_pairs_merge_the_same_object_only():
    a = np.zeros((6, 10), np.int64)
    a[:, 0:6] = 5
    a[:, 6:10] = 6
    b = np.zeros_like(a)
    b[:, 0:5] = 9  # object 5 as the other block saw it
    b[:, 5:10] = 10  # object 6, one column wider: it overlaps 5 by one column
    assert overlap_pairs(a, b).tolist() == [[5, 9], [6, 10]]
    with pytest.raises(ValueError, match="min_fraction must be in"):
        overlap_pairs(a, b, min_fraction=0)


def test_the_runner_pieces():
    ids, n = local_ids(np.array([[0, 40], [7, 7]]))
    assert n == 2 and ids.tolist() == [[0, 2], [1, 1]]
    assert block_offsets([2, 0, 3]).tolist() == [0, 2, 2]
    assert offset_ids(ids, 10).tolist() == [[0, 12], [11, 11]]
    table = merge_table(5, np.array([[4, 2], [5, 4]]))
    assert table.tolist() == [0, 1, 2, 3, 2, 2]
    assert relabel(np.array([0, 5, 3]), table).tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match=r"pairs hold ids outside 1..5"):
        merge_table(5, np.array([[0, 1]]))


def test_blocks_must_tile_a_grid():
    a = Block((0, 0), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="do not tile axis 1"):
        stitch_blocks([a], (4, 6))
    with pytest.raises(ValueError, match="overlap or leave gaps"):
        stitch_blocks([a, a], (4, 4))
    with pytest.raises(ValueError, match="connectivity must be one of"):
        contact_pairs(np.zeros((1, 2)), np.zeros((1, 2)), [0], connectivity="any")
