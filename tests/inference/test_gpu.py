"""The device paths on a real CUDA GPU (``pytest -m gpu``; every test skips without one).

Run by ``benchmarks/gpu_check.py`` first. Not yet run on a GPU in this project (no GPU
was at hand when they were written): they are the checks to run when one is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from predictors import blur

from napari_res101unet import run_segmentation, train
from napari_res101unet.inference import forward as forward_mod
from napari_res101unet.inference import segment
from napari_res101unet.inference.pipeline import CudaOps, Streamed

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_cuda_uses_the_streamed_pipeline_and_blends_on_the_device(rng, monkeypatch):
    made: list[Streamed] = []

    def streamed(dev):
        made.append(Streamed(dev))
        return made[-1]

    monkeypatch.setattr(segment, "transfers_for", streamed)
    image = rng.random((2, 700, 650)).astype(np.float32)
    kw = {"tile_size": 256, "batch_size": 3, "return_probabilities": True, "device": "cuda"}
    auto = run_segmentation(image, blur, **kw)
    assert made and isinstance(made[0].ops, CudaOps)
    host = run_segmentation(image, blur, blend_on_device=False, **kw)
    assert np.array_equal(auto.labels, host.labels)
    np.testing.assert_allclose(auto.probabilities, host.probabilities, atol=1e-6)
    cpu = run_segmentation(image, blur, **{**kw, "device": "cpu"})
    assert (auto.labels != cpu.labels).mean() < 1e-4  # only float-order differences


def test_network_on_cuda_matches_the_cpu(small_model, rng):
    image = rng.integers(0, 255, (600, 500, 3), dtype=np.uint8)
    cpu = run_segmentation(image, small_model, device="cpu", tile_size=256)
    fp32 = run_segmentation(image, small_model, device="cuda", tile_size=256,
                            mixed_precision=False)  # fmt: skip
    amp = run_segmentation(image, small_model, device="cuda", tile_size=256)
    assert fp32.precision == "float32" and "mixed" in amp.precision
    # float32 convolutions may run in TF32 on Ampere and later (cuDNN's default)
    assert (fp32.labels == cpu.labels).mean() > 0.995
    assert (amp.labels == cpu.labels).mean() > 0.97


def test_a_real_out_of_memory_is_retried_smaller(small_model, rng):
    image = rng.integers(0, 255, (3072, 3072, 3), dtype=np.uint8)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, 1.5 * 2**30 / total))
    try:  # a plan for 64 GiB of activations cannot fit in 1.5 GiB
        result = run_segmentation(image, small_model, device="cuda", memory_budget=64 * 2**30)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert any("retried smaller" in n for n in result.notes)
    assert result.labels.shape == (3072, 3072)


def test_cudnn_benchmark_is_restored_after_a_run(rng):
    before = torch.backends.cudnn.benchmark
    run_segmentation(rng.random((300, 300)).astype(np.float32), blur, device="cuda")
    assert torch.backends.cudnn.benchmark == before


def test_a_device_side_assert_is_a_device_failure_message():
    from napari_res101unet.errors import DeviceFailure

    def asserting(x):
        raise torch.AcceleratorError("CUDA error: device-side assert triggered")

    with pytest.raises(DeviceFailure, match="cuda:0 failed during the run"):
        run_segmentation(np.zeros((200, 200), np.float32), asserting, device="cuda")


@pytest.mark.slow
def test_compiled_model_on_cuda(small_model, rng):
    image = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
    plain = run_segmentation(image, small_model, device="cuda", mixed_precision=False)
    compiled = run_segmentation(
        image, small_model, device="cuda", mixed_precision=False, compile_model=True
    )
    module = forward_mod._INFERENCE_COPIES[small_model][1]
    assert forward_mod.compiled_module(module).failed is None
    assert (plain.labels == compiled.labels).mean() > 0.999


def test_training_on_cuda_with_amp(rng):
    pairs = [
        (rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), (rng.random((96, 96)) > 0.5))
        for _ in range(4)
    ]
    steps = []
    model = train(
        pairs, epochs=1, steps_per_epoch=3, val_fraction=0.0, patch_size=64, batch_size=2,
        device="cuda", callback=lambda e: steps.append(e) if e.kind == "step" else None,
    )  # fmt: skip
    assert len(steps) == 3 and all(np.isfinite(e.loss) for e in steps)
    assert next(model.parameters()).device.type == "cuda"
