"""The engine's ``refine`` job: :func:`~napari_res101unet.training.refine.refine` with
events streamed back (runs in the engine process)."""

from __future__ import annotations

from typing import Any

import numpy as np


def run_refine(msg: dict, job: Any, model: Any, label: str) -> dict[str, Any]:
    """Fine-tune ``model`` (called ``label``) on ``msg["labels"]`` where ``msg["edited"]``;
    re-segment.

    ``msg``: ``image``, ``labels``, ``edited`` (bool mask), ``pairs`` (earlier pairs),
    ``settings`` (a RefineSettings), ``segment_settings`` (a SegmentSettings: how the rest
    is segmented again, and the device) and ``output``.
    """
    from ..training.refine import refine

    done: dict[str, Any] = {}

    def callback(event) -> None:
        data = event.as_dict()
        if data["kind"] == "done":
            done.update(data)
        job.event(data)

    seg = msg["segment_settings"]
    result = refine(
        model,
        msg["image"],
        msg["labels"],
        msg["settings"],
        edited=msg["edited"],
        pairs=[tuple(p) for p in msg.get("pairs") or []],
        output=msg.get("output"),
        device=seg.device,
        callback=callback,
        should_stop=job.should_stop,
        segment_settings=seg,
    )
    labels = result.labels
    return {
        "labels": labels.astype(np.uint8) if labels.max(initial=0) < 256 else labels,
        "path": None if result.path is None else str(result.path),
        "record": result.record,
        "reason": done.get("reason"),
        "seconds": result.seconds,
        "class_names": list(result.model.spec.class_names),
        "model_name": label,
        "settings": msg["settings"].as_dict(),
        "segment_settings": seg.as_dict(),
    }
