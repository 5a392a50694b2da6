"""What the engine process does for each request (runs there, never in napari's process)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import protocol as P


@dataclass
class JobContext:
    """How an operation talks back: progress, events, and whether to stop."""

    job_id: int
    send: Callable[[dict], None]
    should_stop: Callable[[], bool]

    def progress(self, done: int, total: int) -> None:
        self.send(P.progress(self.job_id, done, total))

    def event(self, data: dict) -> None:
        self.send(P.event(self.job_id, data))


def hello() -> dict[str, Any]:
    """Import the heavy parts once, and report the devices found."""
    import segmentation_models_pytorch  # noqa: F401  (warm: the first job starts fast)
    import torch

    from ..device import available_devices, describe_device, resolve_device

    devices = {name: describe_device(resolve_device(name)) for name in available_devices()}
    return {"pid": os.getpid(), "torch": str(torch.__version__), "devices": devices}


def get_model(source: str, in_channels: int = 3):
    """The job's model: a path (cached by content until it changes) or ``untrained``."""
    from ..registry import open_model

    return open_model(source, "cpu", in_channels=in_channels)


def model_label(source: str, model) -> str:
    """What to call the model in messages: its file name, else its spec's name."""
    from ..registry import UNTRAINED

    return (
        model.spec.name if source == UNTRAINED else Path(source).name.removesuffix(".safetensors")
    )


def op_segment(msg: dict, job: JobContext) -> dict[str, Any]:
    import numpy as np

    from ..inference.segment import run_segmentation
    from ..io import algorithm_identity

    options = dict(msg.get("options") or {})
    model = get_model(msg["model"], int(msg.get("in_channels", 3)))
    result = run_segmentation(
        msg["image"],
        model,
        msg.get("settings"),
        progress=job.progress,
        should_stop=job.should_stop,
        **options,
    )
    probs, unc = result.probabilities, result.uncertainty
    return {
        "labels": result.labels,
        "probabilities": None if probs is None else probs.astype(np.float16),
        "uncertainty": None if unc is None else unc.astype(np.float16),
        "summary": result.summary(),
        "plan": result.plan.describe(),
        "device": result.device,
        "precision": result.precision,
        "seconds": result.seconds,
        "class_names": result.class_names,
        "model_name": model_label(msg["model"], model),
        "algorithm": list(algorithm_identity(model)),
        "settings": result.settings.as_dict(),
    }


def op_train(msg: dict, job: JobContext) -> dict[str, Any]:
    """Fine-tune from ``msg["pairs"]`` with ``msg["settings"]`` (a TrainSettings);
    ``msg["options"]``: the other :class:`~napari_res101unet.training.run.TrainRun` fields
    (output, device, model, encoder_weights, spacing). Events stream back; the best model
    is saved to ``options["output"]``."""
    from ..config import ALL_GPUS
    from ..training.run import TrainRun, fit

    done: dict[str, Any] = {}

    def callback(event) -> None:
        data = event.as_dict()
        if data["kind"] == "done":
            done.update(data)
        job.event(data)

    options = dict(msg.get("options") or {})
    run = TrainRun(
        [tuple(p) for p in msg["pairs"]], pair_names=msg.get("names"), callback=callback,
        should_stop=job.should_stop, **options,
    )  # fmt: skip
    runner = fit
    if options.get("device") == ALL_GPUS:
        from ..training.multi_gpu import fit_all_gpus as runner
    model = runner(run, msg["settings"])
    training = model.spec.training or {}
    return {
        "path": done.get("path"),
        "reason": done.get("reason"),
        "best_epoch": training.get("best_epoch"),
        "best_val_iou": training.get("best_val_iou"),
        "epochs_done": training.get("epochs_done"),
        "class_names": list(model.spec.class_names),
        "seconds": done.get("seconds"),
        "settings": msg["settings"].as_dict(),
    }


def op_refine(msg: dict, job: JobContext) -> dict[str, Any]:
    """Fine-tune ``msg["model"]`` on corrected labels (see :mod:`.refine_op`)."""
    from .refine_op import run_refine

    model = get_model(msg["model"], int(msg.get("in_channels", 3)))
    return run_refine(msg, job, model, model_label(msg["model"], model))


def op_ping(msg: dict, job: JobContext) -> dict[str, Any]:
    return {"pid": os.getpid()}


def op_segment_blocks(msg: dict, job: JobContext) -> dict[str, Any]:
    """Segment the store at ``msg["source"]`` block by block into ``msg["output"]``."""
    from ..registry import UNTRAINED
    from .ops_blocks import segment_store

    reply = segment_store(msg, job)
    if msg["model"] != UNTRAINED:
        reply["model_name"] = model_label(msg["model"], None)
    return reply


def op_segment_files(msg: dict, job: JobContext) -> dict[str, Any]:
    """Segment the files ``msg["inputs"]`` into ``msg["output"]`` (see
    :func:`~napari_res101unet.inference.cohort.segment_files`); progress counts files."""
    from ..inference.cohort import segment_files
    from ..inference.cohort_file import CohortProgress

    class Files(CohortProgress):
        def planned(self, files: int) -> None:
            self.total, self.done = files, 0
            job.progress(0, files)

        def finished(self, status: dict) -> None:
            self.done += 1
            job.progress(self.done, self.total)

    result = segment_files(
        msg["inputs"], msg["model"], msg["output"], msg.get("settings"), msg.get("cohort"),
        msg.get("cluster"), progress=Files(),
    )  # fmt: skip
    return {"statuses": result.statuses, "seconds": result.seconds, "note": result.note}


OPS: dict[str, Callable[[dict, JobContext], Any]] = {
    P.SEGMENT_FILES: op_segment_files,
    P.SEGMENT_BLOCKS: op_segment_blocks,
    P.SEGMENT: op_segment,
    P.TRAIN: op_train,
    P.PING: op_ping,
    P.REFINE: op_refine,
}
