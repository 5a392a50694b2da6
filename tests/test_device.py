from __future__ import annotations

import pytest
import torch

from napari_res101unet.device import (
    autocast,
    available_devices,
    precision_name,
    resolve_device,
)


def test_auto_picks_an_available_device():
    dev = resolve_device("auto")
    assert str(dev) in available_devices() or dev.type == "mps"
    if not torch.cuda.is_available():
        assert dev.type in ("cpu", "mps")
    assert resolve_device(None) == dev


def test_cpu_always_works():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert available_devices()[-1] == "cpu"


@pytest.mark.parametrize("name", ["tpu", "gpu0", "cuda:x", ""])
def test_unknown_device_names_the_allowed_ones(name):
    with pytest.raises(ValueError, match="allowed: auto, cpu, cuda, mps"):
        resolve_device(name)


def test_device_of_wrong_type():
    with pytest.raises(TypeError, match="device must be a string"):
        resolve_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available here"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")


def test_cpu_runs_in_full_precision():
    cpu = torch.device("cpu")
    assert precision_name(cpu) == "float32"
    with autocast(cpu):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_uses_mixed_precision():
    dev = resolve_device("cuda")
    assert "mixed" in precision_name(dev)
    with autocast(dev):
        y = torch.ones(8, 8, device=dev) @ torch.ones(8, 8, device=dev)
    assert y.dtype in (torch.float16, torch.bfloat16)
