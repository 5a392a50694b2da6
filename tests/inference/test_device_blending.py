"""Device-side blending, proven on the CPU: the torch accumulator against the numpy band
accumulator, with injected predictors (same weights, same float32 operations)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from predictors import blur, per_pixel, three_class

from napari_res101unet import run_segmentation
from napari_res101unet.inference import device_blend
from napari_res101unet.inference.blending import SliceAccumulator
from napari_res101unet.inference.device_blend import TorchAccumulator, blend_rows
from napari_res101unet.inference.tiling import plan_tiles

CASES = [
    (per_pixel, (300, 420), {"tile_size": 64, "overlap": 0.3, "batch_size": 5}),
    (blur, (3, 130, 250), {"tile_size": 64, "overlap": 0.25, "batch_size": 3}),
    (three_class, (200, 260, 3), {"tile_size": 96, "batch_size": 4}),
    (blur, (2, 210, 190), {"tile_size": 96, "blending": "constant", "batch_size": 7}),
    (per_pixel, (150, 170), {}),  # whole slice in one pass
]


@pytest.mark.parametrize(("predictor", "shape", "kw"), CASES)
def test_device_blending_equals_the_band_accumulator(rng, predictor, shape, kw):
    image = rng.random(shape).astype(np.float32)
    kw = {**kw, "return_probabilities": True}
    cpu = run_segmentation(image, predictor, blend_on_device=False, **kw)
    dev = run_segmentation(image, predictor, blend_on_device=True, **kw)
    assert cpu.plan == dev.plan
    assert np.array_equal(dev.labels, cpu.labels)
    assert dev.labels.dtype == cpu.labels.dtype
    # same float32 operations in the same order: identical, not merely close
    assert np.abs(dev.probabilities - cpu.probabilities).max() == 0.0


def test_default_on_the_cpu_blends_with_numpy(rng, monkeypatch):
    made = []
    monkeypatch.setattr(TorchAccumulator, "__init__", lambda *a, **k: made.append(a))
    run_segmentation(rng.random((200, 200)).astype(np.float32), per_pixel, tile_size=64)
    assert made == []


@pytest.mark.parametrize("channels", [1, 3])
def test_torch_band_mode_emits_the_same_rows(rng, channels):
    """A tile-high band on the device shifts rows like the numpy band, exactly."""
    plan = plan_tiles((230, 170), budget_bytes=1e9, bytes_per_pixel=64, tile_size=64)
    got: dict[str, list] = {"numpy": [], "torch": []}
    numpy_acc = SliceAccumulator(plan, channels, lambda a, b, p: got["numpy"].append((a, b, p)))
    torch_acc = TorchAccumulator(
        plan,
        channels,
        lambda a, b, p: got["torch"].append((a, b, p.numpy().copy())),
        torch.device("cpu"),
        band=plan.tile[0],
    )
    assert not torch_acc.whole
    for y, x in plan.windows():
        out = rng.random((channels, *plan.tile)).astype(np.float32)
        numpy_acc.add(y, x, out)
        torch_acc.add(y, x, torch.from_numpy(out))
    numpy_acc.finish()
    torch_acc.finish()
    assert [g[:2] for g in got["torch"]] == [g[:2] for g in got["numpy"]]
    assert len(got["numpy"]) > 1
    for (_, _, a), (_, _, b) in zip(got["numpy"], got["torch"]):
        assert np.array_equal(a, b)


def test_whole_slice_mode_emits_once(rng):
    plan = plan_tiles((230, 170), budget_bytes=1e9, bytes_per_pixel=64, tile_size=64)
    rows = []
    acc = TorchAccumulator(plan, 1, lambda a, b, p: rows.append((a, b)), torch.device("cpu"), 230)
    for y, x in plan.windows():
        acc.add(y, x, torch.ones(1, *plan.tile))
    acc.finish()
    assert rows == [(0, 230)]


def test_blend_rows_plans_from_free_memory():
    plan = plan_tiles((4000, 3000), budget_bytes=1e9, bytes_per_pixel=64, tile_size=512)
    row = 2 * 4 * (1 + 1) * 3000
    share = device_blend.BLEND_SHARE
    assert blend_rows(plan, 1, 4000 * row / share) == 4000  # the whole slice fits
    assert blend_rows(plan, 1, 3999 * row / share) == plan.tile[0]  # a band fits
    assert blend_rows(plan, 1, 100 * row / share) is None  # blend on the CPU
    assert blend_rows(plan, 3, 4000 * row / share) == plan.tile[0]  # more channels


def test_out_of_memory_for_the_accumulator_falls_back_to_the_cpu(rng, monkeypatch):
    """Allocating the device accumulator fails: the retry blends on the CPU, same labels."""
    image = rng.random((200, 230)).astype(np.float32)
    failures = []

    def no_room(self, shape):
        failures.append(shape)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")

    ref = run_segmentation(image, blur, tile_size=64, batch_size=4)
    monkeypatch.setattr(TorchAccumulator, "_zeros", no_room)
    result = run_segmentation(image, blur, tile_size=64, batch_size=4, blend_on_device=True)
    assert len(failures) == 1
    assert np.array_equal(result.labels, run_segmentation(image, blur, tile_size=64).labels)
    assert any("retried smaller" in n for n in result.notes)
    assert ref.notes == []
