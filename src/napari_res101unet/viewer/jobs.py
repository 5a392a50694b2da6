"""Running an engine operation for the napari API: in the engine process, or here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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


def segment_files(
    inputs: Any,
    model: Any,
    output: Any,
    settings: Any = None,
    cohort: Any = None,
    *,
    in_process: bool = False,
    progress: Progress | None = None,
    **fields: Any,
) -> dict:
    """:func:`~napari_res101unet.inference.cohort.segment_files` from napari's process:
    run in the engine process (no torch here), or here with ``in_process``.

    ``settings`` / ``cohort`` (:class:`~napari_res101unet.config.SegmentSettings`,
    :class:`~napari_res101unet.config.CohortSettings`) and ``**fields`` (fields of either)
    as there; ``progress`` gets ``PROGRESS`` messages counting files. Returns ``{"statuses",
    "seconds", "note"}`` (see :class:`~napari_res101unet.inference.cohort_file.CohortResult`).
    """
    from ..config import CohortSettings, SegmentSettings, settings_with, split_fields

    segment_fields, cohort_fields = split_fields(fields, SegmentSettings, CohortSettings)
    payload = {
        "inputs": [str(i) for i in ([inputs] if isinstance(inputs, (str, Path)) else inputs)],
        "model": model_reference(model),
        "output": str(output),
        "settings": settings_with(SegmentSettings, settings, segment_fields),
        "cohort": settings_with(CohortSettings, cohort, cohort_fields),
    }
    return run_job(P.SEGMENT_FILES, payload, in_process=in_process, progress=progress)
