"""The plugin's exceptions, and one way to say an error in one line.

Nothing here imports torch or Qt: napari's process catches these too.
"""

from __future__ import annotations

import re

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    FileNotFoundError,
    MemoryError,
)
"""Errors that explain themselves: shown without a traceback (CLI, engine log)."""


class Cancelled(RuntimeError):
    """Raised when ``should_stop()`` returned True; nothing partial is returned."""


class CheckpointError(ValueError):
    """A file that is not a usable Res101_UNet checkpoint."""


class DeviceFailure(RuntimeError):
    """The GPU failed during a run (a device-side assert, a lost device, a driver error).

    Its CUDA context cannot be trusted afterwards: the engine process restarts for the next
    job; a script should restart Python."""


_DEVICE_FAILURE = re.compile(
    r"CUDA error|CUDA driver error|CUDA-capable device|device-side assert|cudaError|"
    r"CUBLAS_STATUS|CUDNN_STATUS|NCCL error|illegal memory access|unspecified launch failure",
    re.IGNORECASE,
)


def is_device_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the GPU itself failed (out of memory does not count)."""
    if isinstance(exc, DeviceFailure):
        return True
    text = str(exc)
    if "out of memory" in text.lower():
        return False
    return type(exc).__name__ == "AcceleratorError" or bool(_DEVICE_FAILURE.search(text))


def device_failure(exc: BaseException, device: str = "the GPU") -> DeviceFailure:
    """The :class:`DeviceFailure` to raise for ``exc`` (see :func:`is_device_failure`)."""
    return DeviceFailure(
        f"{device} failed during the run ({summarize(exc, 100)}); the engine restarts for "
        "the next run (in a script, restart Python); if it happens again, check the driver "
        "(nvidia-smi) or use device='cpu'"
    )


class EngineError(Exception):
    """An error raised inside the engine process, re-raised here with its message.

    Deliberately not a RuntimeError: napari's generator workers swallow RuntimeErrors as
    "worker deleted" and the user would never see the message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class EngineCrashed(EngineError):
    """The engine process died (a segfault, the OOM killer...) or never started."""


class EngineBusy(Exception):
    """A job is already running in this engine process."""


def summarize(exc: BaseException | str, limit: int = 300) -> str:
    """The first line of an error's message (its type name when it has none)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    return text.splitlines()[0][:limit]


def explain(exc: BaseException) -> str:
    """A one-line message for the user; device out-of-memory gets a hint."""
    first = summarize(exc)
    if is_device_failure(exc) and not isinstance(exc, DeviceFailure):
        return summarize(device_failure(exc))
    if "out of memory" in str(exc).lower() and not isinstance(exc, MemoryError):
        return f"out of device memory: {first}; try a smaller tile or batch, or the CPU"
    return first
