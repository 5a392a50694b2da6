"""The plugin's exceptions, and one way to say an error in one line.

Nothing here imports torch or Qt: napari's process catches these too.
"""

from __future__ import annotations

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
    if "out of memory" in str(exc).lower() and not isinstance(exc, MemoryError):
        return f"out of device memory: {first}; try a smaller tile or batch, or the CPU"
    return first
