"""A GPU that fails mid-run, precision fallbacks, cuDNN autotuning and torch.compile, all
checked on the CPU with injected failures (this machine may have no CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from predictors import per_pixel

from napari_res101unet import device as device_mod
from napari_res101unet import run_segmentation
from napari_res101unet.device import (
    amp_dtype,
    autocast,
    fixed_shape_kernels,
    precision_name,
    resolve_device,
)
from napari_res101unet.errors import DeviceFailure, explain, is_device_failure
from napari_res101unet.inference import forward as forward_mod

FAILURES = [
    RuntimeError("CUDA error: device-side assert triggered\nCUDA kernel errors might be..."),
    torch.AcceleratorError("CUDA error: unspecified launch failure"),
    RuntimeError("CUDA driver error: device not ready"),
    RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"),
]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda e: str(e)[:30])
def test_a_gpu_failing_mid_run_is_a_clear_device_failure(failure):
    calls = []

    def dying(x):
        calls.append(1)
        if len(calls) == 3:
            raise failure
        return per_pixel(x)

    with pytest.raises(DeviceFailure) as info:
        run_segmentation(np.zeros((300, 300), np.float32), dying, tile_size=64, batch_size=2)
    message = str(info.value)
    assert message.startswith("cpu failed during the run (")
    assert "engine restarts for the next run" in message and "device='cpu'" in message
    assert "\n" not in message
    assert explain(info.value) == message and len(message) <= 300  # shown whole
    assert info.value.__cause__ is failure


def test_out_of_memory_is_not_a_device_failure_and_other_errors_pass_through():
    assert not is_device_failure(RuntimeError("CUDA error: out of memory"))
    assert not is_device_failure(ValueError("bad shape"))
    assert is_device_failure(DeviceFailure("x"))

    def broken(x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as info:
        run_segmentation(np.zeros((64, 64), np.float32), broken)
    assert not isinstance(info.value, DeviceFailure)


def test_explain_names_a_raw_cuda_error_and_the_restart():
    text = explain(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert "the GPU failed during the run" in text and "engine restarts" in text


def test_a_lost_device_at_start_is_a_device_failure(monkeypatch):
    def gone(dev):
        raise RuntimeError("CUDA error: no CUDA-capable device is detected")

    monkeypatch.setattr(torch.cuda, "mem_get_info", gone)
    with pytest.raises(DeviceFailure, match="cuda:0 failed during the run"):
        device_mod.free_memory(torch.device("cuda:0"))


def test_cuda_3_on_a_one_gpu_machine(monkeypatch):
    """No CUDA here: the driver is faked as reporting exactly one device."""
    monkeypatch.setattr(device_mod, "_cuda_ok", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"'cuda:3' does not exist: this machine has 1 CUDA "
                       r"device\(s\); available: cuda:0, "):  # fmt: skip
        resolve_device("cuda:3")


def test_mps_runs_float32_and_old_gpus_fall_back_to_float16(monkeypatch):
    """MPS (no bf16 autocast used there): full float32, autocast a no-op. A CUDA GPU
    without bf16 uses float16 (and the trainer's grad scaler, see trainer.py)."""
    mps = torch.device("mps")
    assert amp_dtype(mps) is None and precision_name(mps, True) == "float32"
    with autocast(mps):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert amp_dtype(cuda) == torch.float16 and precision_name(cuda) == "float16 (mixed)"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert amp_dtype(cuda) == torch.bfloat16


def test_cudnn_benchmark_only_on_cuda_and_restored():
    cudnn = torch.backends.cudnn
    before = cudnn.benchmark
    with fixed_shape_kernels(torch.device("cpu")):
        assert cudnn.benchmark == before
    try:
        cudnn.benchmark = False
        with pytest.raises(KeyError), fixed_shape_kernels(torch.device("cuda")):
            assert cudnn.benchmark is True
            raise KeyError("restored even on errors")
        assert cudnn.benchmark is False
    finally:
        cudnn.benchmark = before


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_compiled_model_gives_the_same_labels(rng, monkeypatch):
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available in this torch")
    monkeypatch.setattr(forward_mod, "COMPILE_BACKEND", "eager")  # dynamo, no C compiler
    model, image = Tiny(), rng.random((150, 170)).astype(np.float32)
    plain = run_segmentation(image, model, return_probabilities=True, tile_size=64)
    compiled = run_segmentation(
        image, model, return_probabilities=True, tile_size=64, compile_model=True
    )
    assert np.array_equal(plain.labels, compiled.labels)
    np.testing.assert_allclose(compiled.probabilities, plain.probabilities, atol=1e-6)
    module = forward_mod._INFERENCE_COPIES[model][1]
    wrapper = forward_mod.compiled_module(module)
    assert wrapper.failed is None and wrapper.shapes  # compiled, cached per shape
    assert {s[2:] for s in wrapper.shapes} == {(64, 64)}


def test_a_failing_compile_warns_and_runs_uncompiled(rng, monkeypatch):
    def broken_compile(module, **kw):
        def run(x):
            raise NotImplementedError("no compiler for this op")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model, image = Tiny(), rng.random((100, 90)).astype(np.float32)
    with pytest.warns(UserWarning, match="torch.compile failed, running uncompiled"):
        result = run_segmentation(image, model, compile_model=True)
    assert np.array_equal(result.labels, run_segmentation(image, model).labels)
