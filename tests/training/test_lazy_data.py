"""Training pairs left on disk (zarr, NIfTI): lazy reads, a bounded cache, the label index."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.io import volumes as slice_cache
from napari_res101unet.preprocess.pairs import check_pairs
from napari_res101unet.training.lazy_pairs import (
    LazySampler,
    SliceCache,
    check_any,
    folder_pairs,
    open_pairs,
)
from napari_res101unet.training.lazy_pairs import prepare_any as prepare

zarr = pytest.importorskip("zarr")
nib = pytest.importorskip("nibabel")


def stack(seed: int, n: int = 8, size: int = 96):
    """``(n, size, size)`` float32 image with a few bright disks (label 1) per slice."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n, size, size), np.uint8)
    for z in range(n):
        cy, cx = rng.integers(16, size - 16, 2)
        labels[z][(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 1
    image = rng.normal(50, 15, labels.shape).astype(np.float32) + 80 * labels
    return image, labels


def write_zarr(path, data):
    zarr.create_array(str(path), data=data, chunks=(1, *data.shape[1:]))
    return path


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_zarr_pairs_match_the_in_memory_checks_and_store_an_index(tmp_path):
    image, labels = stack(0)
    pair = (write_zarr(tmp_path / "im.zarr", image), write_zarr(tmp_path / "lab.zarr", labels))
    lazy = check_any([pair])[0]
    eager = check_pairs([(image, labels)])[0]
    np.testing.assert_array_equal(lazy.values, eager.values)
    np.testing.assert_array_equal(lazy.counts, eager.counts)
    assert (tmp_path / ".lab.zarr.fgindex.npz").is_file()  # built once, next to the data
    again = check_any([pair])[0]  # read back from the index file
    np.testing.assert_array_equal(again.counts, eager.counts)
    spec = {"mode": "minmax"}
    item = prepare([lazy], ignore_index=None, in_channels=3, normalization=spec)[0]
    ref = prepare([eager], ignore_index=None, in_channels=3, normalization=spec)[0]
    np.testing.assert_array_equal(item.data[3], ref.data[3])
    np.testing.assert_array_equal(item.labels[3], ref.labels[3])
    assert item.slices == ref.slices


def test_nifti_slices_read_lazily_equal_the_reader(tmp_path):
    from napari_res101unet.io import read_image

    image, labels = stack(1, n=5)
    affine = np.eye(4)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(image.T), affine), tmp_path / "im.nii.gz")
    nib.save(nib.Nifti1Image(np.ascontiguousarray(labels.T), affine), tmp_path / "lab.nii.gz")
    ((vol, lab, _),) = open_pairs([(tmp_path / "im.nii.gz", tmp_path / "lab.nii.gz")], None)
    whole = read_image(tmp_path / "im.nii.gz").data
    assert vol.shape == whole.shape == image.shape
    for z in (0, 4):
        np.testing.assert_array_equal(vol[z], whole[z])
        np.testing.assert_array_equal(lab[z], labels[z])


def test_a_set_larger_than_the_cache_is_sampled_with_bounded_memory(tmp_path, monkeypatch):
    cache = SliceCache(2 * 2**20)  # 2 MiB: the set below is 24 MiB of image slices
    monkeypatch.setattr(slice_cache, "CACHE", cache)  # the one cache images and labels use
    pairs = []
    for i in range(4):
        image, labels = stack(10 + i, n=24, size=256)
        pairs.append(
            (
                write_zarr(tmp_path / f"im{i}.zarr", image),
                write_zarr(tmp_path / f"lab{i}.zarr", labels),
            )
        )
        del image, labels
    checked = check_any(pairs)
    items = prepare(checked, ignore_index=None, in_channels=1, normalization={"mode": "minmax"})
    sampler = LazySampler(items, 64, 4, foreground_fraction=1.0, augment=False)
    rng = np.random.default_rng(0)
    sampler.batch(rng)
    before = _rss_bytes()
    for _ in range(60):
        x, y = sampler.batch(rng)
        assert x.shape == (4, 1, 64, 64) and y.shape == (4, 64, 64)
        assert all((y[b] == 1).any() for b in range(4))  # foreground oversampling holds
        assert cache.nbytes <= cache.max_bytes
    grown = _rss_bytes() - before
    assert grown < 12 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over a 24 MiB set"


def test_shapes_that_disagree_are_named_before_anything_is_read(tmp_path):
    write_zarr(tmp_path / "im.zarr", np.zeros((4, 64, 64), np.float32))
    write_zarr(tmp_path / "lab.zarr", np.zeros((4, 64, 60), np.uint8))
    with pytest.raises(ValueError, match=r"'case': image shape \(4, 64, 64\) does not match"):
        check_any([(tmp_path / "im.zarr", tmp_path / "lab.zarr")], names=["case"])


def test_folders_of_zarr_pairs_are_matched_by_name_and_masks_follow_folder_rules(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    image, labels = stack(3, n=4)
    write_zarr(images / "a.zarr", image)
    write_zarr(masks / "a_mask.zarr", labels * 255)  # a 0/255 mask becomes 0/1
    pairs, names = folder_pairs(images, masks)
    assert names == ["a.zarr"]
    checked = check_any(pairs, names=names)
    assert checked[0].values.tolist() == [0, 1]
    assert checked[0].labels[1].max() == 1


def test_dataloader_workers_stream_different_batches_from_disk(tmp_path):
    from napari_res101unet.training.dataset import make_loader

    image, labels = stack(5, n=6)
    pair = (write_zarr(tmp_path / "im.zarr", image), write_zarr(tmp_path / "lab.zarr", labels))
    items = prepare(
        check_any([pair]), ignore_index=None, in_channels=3, normalization={"mode": "minmax"}
    )
    sampler = LazySampler(items, 64, 2, foreground_fraction=0.5, augment=True)
    batches = iter(make_loader(sampler, seed=0, rank=0, start=0, workers=2, pin=False))
    (x1, y1), (x2, y2) = next(batches), next(batches)  # one from each worker
    assert y2.shape == y1.shape
    assert x1.shape == x2.shape == (2, 3, 64, 64) and y1.shape == (2, 64, 64)
    assert x1.dtype.is_floating_point and y1.dtype.is_signed
    assert not np.array_equal(x1.numpy(), x2.numpy())  # the workers draw their own patches
    del batches
