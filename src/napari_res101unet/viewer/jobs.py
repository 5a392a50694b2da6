"""Running an engine operation for the napari API: in the engine process, or here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine import protocol as P
from ..errors import Cancelled

Progress = Callable[[dict], None]
"""Called with each ``PROGRESS``/``EVENT`` message of a job (see engine.protocol)."""


def run_job(
    op: str, payload: dict, *, in_process: bool = False, progress: Progress | None = None
) -> Any:
    """Run an engine operation and return its result: in the engine process (as the
    widgets do), or here with the same code when ``in_process``."""
    report = progress or (lambda msg: None)
    if in_process:
        from ..engine.ops import OPS, JobContext

        job = JobContext(0, report, lambda: False)
        return OPS[op](P.request(op, 0, **payload), job)
    from ..engine.client import get_engine

    job = get_engine(op).submit(op, **payload)
    for msg in job:
        report(msg)
    if job.cancelled:
        raise Cancelled(f"the engine's {op} job was cancelled")
    return job.result


def model_reference(model: Any) -> str:
    """A model name or path as the engine takes it (a path, or ``untrained``)."""
    from ..registry import UNTRAINED, find_model

    if model is None:
        raise ValueError("choose a model first")
    found = find_model(model)
    return UNTRAINED if found == UNTRAINED else str(found)
