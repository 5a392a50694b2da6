"""The engine's ``refine`` job: :func:`~napari_res101unet.training.refine.refine` with
events streamed back (runs in the engine process)."""

from __future__ import annotations

from typing import Any

import numpy as np


def run_refine(msg: dict, job: Any, model: Any, label: str) -> dict[str, Any]:
    """Fine-tune ``model`` (called ``label``) on ``msg["labels"]`` where ``msg["edited"]``;
    re-segment.

    ``msg``: ``image``, ``labels``, ``edited`` (bool mask), ``pairs`` (earlier pairs),
    ``options`` (keyword arguments of ``refine``: ``minutes``, ``output``, ``device``...),
    ``segment_options`` (of ``run_segmentation``).
    """
    from ..training.refine import refine

    done: dict[str, Any] = {}

    def callback(event) -> None:
        data = event.as_dict()
        if data["kind"] == "done":
            done.update(data)
        job.event(data)

    result = refine(
        model,
        msg["image"],
        msg["labels"],
        edited=msg["edited"],
        pairs=[tuple(p) for p in msg.get("pairs") or []],
        callback=callback,
        should_stop=job.should_stop,
        segment_options=dict(msg.get("segment_options") or {}),
        **dict(msg.get("options") or {}),
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
    }
