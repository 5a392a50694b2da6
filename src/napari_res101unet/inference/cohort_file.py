"""One file of a cohort (:func:`~.cohort.segment_files`), in this process or on a worker.

:func:`segment_file` reads an input, segments it, writes the outputs atomically, then
their provenance sidecars (:mod:`napari_res101unet.io.provenance`), the labels' last, so
an output with its sidecar is complete. :func:`worker_task` does the same on a dask worker
with the worker's model (:func:`~napari_res101unet.registry.open_model`, once per process)
and returns a small status dict: no image or label array passes through the client. No
torch on import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DICOM_SEG, CohortSettings, SegmentSettings
from ..errors import explain

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class FileTask:
    """One input and its planned outputs (paths as strings: small and picklable)."""

    source: str
    target: str
    probabilities: str | None = None


@dataclass(frozen=True)
class CohortOptions:
    """What every file of a run shares (picklable, sent to dask workers)."""

    settings: SegmentSettings
    cohort: CohortSettings
    model_source: str = "untrained"

    def record_settings(self) -> dict[str, Any]:
        """What the sidecar records as settings (and what ``skip_existing`` compares)."""
        pixel = self.cohort.pixel_size
        extra = {} if pixel is None else {"pixel_size": pixel}
        return {**self.settings.as_dict(), "axis": self.cohort.axis, **extra}


class CohortProgress:
    """What :func:`segment_files` tells while it runs: override what you show (the command
    line draws a bar and prints a line per file). The default shows nothing."""

    def planned(self, files: int) -> None:
        """The number of files of this run (finished ones included)."""

    def started(self, source: str) -> None:
        """A file begins (in this process)."""

    def tiles(self, done: int, total: int) -> None:
        """Tiles (blocks, for a large image) of the current file."""

    def finished(self, status: dict[str, Any]) -> None:
        """A file is done, skipped or failed (see :class:`CohortResult`)."""

    def note(self, text: str) -> None:
        """Something worth a line that is not a file's result (a redo and why)."""


@dataclass
class CohortResult:
    """What :func:`segment_files` did: one status per input, in the order they finished.

    A status is a dict with ``source`` and ``status`` (``"done"``, ``"skipped"`` or
    ``"failed"``); done ones add ``target``, ``seconds``, ``summary`` and ``pixels`` (label
    value -> count), failed ones ``reason``.
    """

    statuses: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""  # e.g. "part 2/4: no files"

    def count(self, status: str) -> int:
        return sum(s["status"] == status for s in self.statuses)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s["status"] == FAILED]


def outputs_of(task: FileTask) -> list[str]:
    return [task.target] + ([task.probabilities] if task.probabilities else [])


def worker_task(task: FileTask, options: CohortOptions) -> dict:
    """One file on a dask worker: the worker's cached model, a small status back."""
    from .. import registry
    from ..io.provenance import model_identity
    from .cluster import worker_device

    try:
        device = worker_device(options.settings.device)  # its own GPU when several
        model = registry.open_model(options.model_source, device)
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
    from dataclasses import replace

    import numpy as np

    from ..io import read_image, write_labels
    from .segment import run_segmentation

    source, target, c = Path(task.source), Path(task.target), options.cohort
    image = read_image(source, labels=False)  # an input is an image, whatever its name
    settings = options.settings if device is None else replace(options.settings, device=device)
    result = run_segmentation(
        image.data, model, settings, axis=c.axis, return_probabilities=c.probabilities,
        channel_axis=-1 if image.rgb else None, progress=progress,
        spacing=image.known_spacing, pixel_size=c.pixel_size,
    )  # fmt: skip
    geometry = {
        "spacing": image.spacing,
        "origin": image.origin,
        "direction": image.direction,
        "unit": image.metadata.get("unit"),
        "nifti": image.metadata.get("nifti"),
    }
    if c.format == DICOM_SEG:
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
        "output_format": options.cohort.format,
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
