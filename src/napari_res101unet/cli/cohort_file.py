"""One file of a ``segment`` cohort, in this process or on a dask worker.

:func:`segment_file` reads an input, segments it, writes the outputs atomically, then
their provenance sidecars (:mod:`..inference.provenance`), the labels' last, so an
output with its sidecar is complete. :func:`worker_task` does the same on a dask worker
with the worker's cached model (``cluster.worker_model``) and returns a small status
dict: no image or label array passes through the client. No torch on import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import explain

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
DICOM_SEG = "dicom-seg"


@dataclass(frozen=True)
class FileTask:
    """One input and its planned outputs (paths as strings: small and picklable)."""

    source: str
    target: str
    probabilities: str | None = None


@dataclass(frozen=True)
class CohortOptions:
    """What every file of a run shares (picklable, sent to dask workers)."""

    settings: dict[str, Any]
    axis: int = 0
    fmt: str | None = None
    probabilities: bool = False
    model_source: str = "untrained"
    pixel_size: float | None = None  # --pixel-size: wins over the file's spacing

    def record_settings(self) -> dict[str, Any]:
        """What the sidecar records as settings (and what ``--skip-existing`` compares)."""
        extra = {} if self.pixel_size is None else {"pixel_size": self.pixel_size}
        return {**self.settings, "axis": self.axis, **extra}


def outputs_of(task: FileTask) -> list[str]:
    return [task.target] + ([task.probabilities] if task.probabilities else [])


def worker_task(task: FileTask, options: CohortOptions) -> dict:
    """One file on a dask worker: the worker's cached model, a small status back."""
    from ..inference.cluster import worker_device, worker_model
    from ..io.provenance import model_identity

    try:
        device = worker_device(options.settings["device"])  # its own GPU when several
        model = worker_model(options.model_source, device=device)
        identity = model_identity(model, options.model_source)
        return segment_file(task, model, identity, options, device=device)
    except Exception as exc:
        return failed_status(task.source, explain(exc))


def segment_file(
    task: FileTask,
    model,
    identity: dict,
    options: CohortOptions,
    progress=None,
    device: str | None = None,
) -> dict[str, Any]:
    """Read, segment and write one input; the sidecars last. Returns a status dict
    (``source``, ``target``, ``status``, ``seconds``, ``summary``, ``pixels``).

    ``device`` replaces the settings' device for this run (a dask worker's own GPU); the
    sidecar keeps the settings as given and records the device used.
    """
    import numpy as np

    from ..inference.segment import run_segmentation
    from ..io import read_image, write_labels
    from .spacing import file_spacing

    source, target = Path(task.source), Path(task.target)
    image = read_image(source, labels=False)  # an input is an image, whatever its name
    result = run_segmentation(
        image.data, model, axis=options.axis, return_probabilities=options.probabilities,
        channel_axis=-1 if image.rgb else None, progress=progress,
        spacing=file_spacing(image), pixel_size=options.pixel_size,
        **{**options.settings, "device": device or options.settings["device"]},
    )  # fmt: skip
    geometry = {
        "spacing": image.spacing,
        "origin": image.origin,
        "direction": image.direction,
        "unit": image.metadata.get("unit"),
        "nifti": image.metadata.get("nifti"),
    }
    if options.fmt == DICOM_SEG:
        write_dicom_seg_output(target, source, result.labels, model)
    else:
        write_labels(target, result.labels, **geometry)
    probs = Path(task.probabilities) if task.probabilities else None
    if result.probabilities is not None and probs is not None:
        write_probabilities(probs, result, geometry)
    _write_sidecars(task, identity, options, result)
    values, counts = np.unique(result.labels, return_counts=True)
    return {
        "source": task.source,
        "target": task.target,
        "status": DONE,
        "seconds": result.seconds,
        "summary": result.summary(),
        "pixels": {int(k): int(v) for k, v in zip(values, counts)},
    }


def _write_sidecars(task: FileTask, identity: dict, options: CohortOptions, result) -> None:
    """Probabilities' sidecar, then the labels' (the mark that the input is finished)."""
    from ..io.provenance import provenance_record, write_sidecar

    run = {
        "device": result.device,
        "precision": result.precision,
        "plan": result.plan.describe(),
        "seconds": round(result.seconds, 3),
        "normalization": result.normalization,
        "class_names": result.class_names,
        "output_format": options.fmt,
    }
    outputs = {"labels": Path(task.target).name}
    if task.probabilities:
        outputs["probabilities"] = Path(task.probabilities).name
    for output in reversed(outputs_of(task)):
        record = provenance_record(
            output, task.source, model=identity, settings=options.record_settings(),
            run={**run, "outputs": outputs},
        )  # fmt: skip
        write_sidecar(output, record)


def failed_status(source: str, reason: str) -> dict[str, Any]:
    return {"source": source, "status": FAILED, "reason": reason}


def write_probabilities(path: Path, result, geometry: dict) -> None:
    """Binary: the foreground map with the image's geometry; multi-class: classes last."""
    import numpy as np

    from ..io import write_image

    probs = result.probabilities
    if probs.ndim == result.labels.ndim:
        write_image(path, probs, **geometry)
    else:
        write_image(path, np.moveaxis(probs, 0, -1), unit=geometry["unit"])


def check_dicom_inputs(inputs: list[str]) -> None:
    """Refuse non-DICOM inputs before any work (a SEG references its source series)."""
    from ..io._dicom_seg import source_series

    for source in inputs:
        source_series(source)


def write_dicom_seg_output(target: Path, source: Path, labels, model) -> Path:
    """The labels as a DICOM SEG referencing ``source`` (its output was checked already)."""
    from ..io._dicom_seg import algorithm_identity, write_dicom_seg

    name, version = algorithm_identity(model)
    return write_dicom_seg(
        target, labels, source, class_names=model.spec.class_names, algorithm_name=name,
        algorithm_version=version, overwrite=True,
    )  # fmt: skip
