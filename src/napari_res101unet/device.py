"""Choosing the compute device, its precision and how much memory it has free."""

from __future__ import annotations

import contextlib
import re

import torch

from .config import DEVICES
from .errors import device_failure, is_device_failure

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda)(:(\d+))?$")


def available_devices() -> list[str]:
    """Devices this machine can run on, best first (``cuda:0``..., ``mps``, ``cpu``)."""
    found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if _cuda_ok() else []
    if _mps_ok():
        found.append("mps")
    found.append("cpu")
    return found


def _cuda_ok() -> bool:
    try:
        return torch.cuda.is_available()
    except Exception:  # a broken driver must not stop CPU work
        return False


def _mps_ok() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device name into a :class:`torch.device` that exists on this machine.

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"`` (or None) picks CUDA, then Apple MPS, then the CPU. ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` and ``"mps"`` name one explicitly.

    Raises
    ------
    ValueError
        For an unknown name, or a device that this machine does not have.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device is None:
        device = "auto"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto' or 'cuda:0', got {device!r}")
    name = device.strip().lower()
    match = _DEVICE_RE.match(name)
    if match is None:
        raise ValueError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)} or 'cuda:N'")
    kind, index = match.group(1), match.group(3)
    if kind == "auto":
        return torch.device(available_devices()[0])
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_ok():
            raise ValueError("device 'mps' was asked for, but Apple MPS is not available here")
        return torch.device("mps")
    if not _cuda_ok():
        raise ValueError(
            f"device {device!r} was asked for, but CUDA is not available here "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            f"available: {', '.join(available_devices())}"
        )
    n = torch.cuda.device_count()
    i = int(index or 0)
    if i >= n:
        raise ValueError(
            f"device {device!r} does not exist: this machine has {n} CUDA device(s); "
            f"available: {', '.join(available_devices())}"
        )
    return torch.device(f"cuda:{i}")


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype used on ``device`` (None: full float32)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def fixed_shape_kernels(device: torch.device):
    """On CUDA, let cuDNN pick the fastest convolution kernels for the (fixed) tile shape
    (``torch.backends.cudnn.benchmark``), restoring the setting afterwards; elsewhere a
    no-op."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    before = cudnn.benchmark
    cudnn.benchmark = True
    try:
        yield
    finally:
        cudnn.benchmark = before


def autocast(device: torch.device, enabled: bool = True):
    """Mixed precision on CUDA (bfloat16 where supported, else float16); a no-op elsewhere."""
    dtype = amp_dtype(device)
    if not enabled or dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def precision_name(device: torch.device, mixed: bool = True) -> str:
    """Human-readable precision for reports: ``float32``, ``bfloat16 (mixed)``..."""
    dtype = amp_dtype(device) if mixed else None
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} (mixed)"


def free_memory(device: torch.device) -> int:
    """Bytes that computation may use on ``device`` right now."""
    if device.type == "cuda":
        try:
            free, _total = torch.cuda.mem_get_info(device)
        except RuntimeError as exc:
            if is_device_failure(exc):
                raise device_failure(exc, str(device)) from exc
            raise
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def describe_device(device: torch.device) -> str:
    """One line naming the device: ``cuda:0 (NVIDIA H100, 80 GiB)`` or ``cpu (8 threads)``."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
