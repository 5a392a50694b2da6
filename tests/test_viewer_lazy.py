"""A dask-backed image layer is segmented block by block, never loaded whole (Qt-free)."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
from napari.components import ViewerModel  # noqa: E402

from napari_res101unet import viewer as api  # noqa: E402
from napari_res101unet.viewer.segment_lazy import is_lazy_layer  # noqa: E402


@pytest.fixture
def guarded(monkeypatch):
    """Make computing any dask array of ``shape`` (the whole layer) fail loudly."""
    full: list[tuple] = []
    as_array, compute = da.Array.__array__, da.Array.compute

    def check(arr):
        if full and tuple(arr.shape) == full[0]:
            raise AssertionError(f"the whole layer {arr.shape} was loaded")

    def guarded_array(self, *args, **kwargs):
        check(self)
        return as_array(self, *args, **kwargs)

    def guarded_compute(self, *args, **kwargs):
        check(self)
        return compute(self, *args, **kwargs)

    monkeypatch.setattr(da.Array, "__array__", guarded_array)
    monkeypatch.setattr(da.Array, "compute", guarded_compute)
    return full


@pytest.mark.slow
def test_dask_layer_is_segmented_blockwise_into_a_zarr_backed_layer(guarded, tmp_path):
    from napari_res101unet.inference.segment import segment
    from napari_res101unet.registry import open_model

    stack = np.random.default_rng(0).random((2, 64, 80)).cumsum(axis=2).astype(np.float32)
    lazy = da.from_array(stack, chunks=(1, 32, 40))
    viewer = ViewerModel()
    image = viewer.add_image(lazy, name="big", scale=(2.0, 0.5, 0.5), contrast_limits=(0, 80))
    guarded.append(stack.shape)
    with pytest.raises(AssertionError, match="whole layer"):  # the guard works
        np.asarray(image.data)
    assert is_lazy_layer(image)
    seen: list[dict] = []
    out = tmp_path / "big_labels.zarr"
    labels = api.segment_layer(viewer, image, "untrained", in_process=True,
                               progress=seen.append, tile_size=64, batch_size=1,
                               device="cpu", block_size=64, output=out)  # fmt: skip
    assert type(labels.data).__module__.startswith("zarr")  # backed by the store on disk
    assert labels.metadata["napari_res101unet"]["store"] == str(out)
    assert labels.data.shape == stack.shape and np.allclose(labels.scale, (2.0, 0.5, 0.5))
    assert [m["total"] for m in seen] == [4] * 4 and seen[-1]["done"] == 4  # in blocks
    model = open_model("untrained", "cpu")
    expected = segment(stack, model, tile_size=64, batch_size=1, device="cpu")
    np.testing.assert_array_equal(labels.data[:], expected)
    assert zarr.open_group(str(out)).attrs["napari_res101unet"]["complete"] is True
