"""Images larger than memory in a cohort: each a zarr / OME-Zarr store or a big TIFF,
segmented block by block with :func:`~.blockwise.segment_blocks` (in this process, on a
local dask cluster or at a scheduler) into an OME-Zarr labels store: ``output`` itself
when it ends in ``.zarr``, else ``output/<name>_labels.zarr``; ``labels_name`` writes
``labels/NAME`` into an OME-Zarr input instead. Each store gets a provenance sidecar; with
``skip_existing`` a complete store made by the same model and settings is kept.
No torch on import.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .cohort_file import DONE, SKIPPED, CohortResult


def segment_large_files(sources: list[Path], model: Any, output: Path, settings: tuple,
                        report: Any) -> Any:  # fmt: skip
    """Segment each large input; ``settings``: ``(segment, cohort, cluster, blockwise)``."""
    from ..io.outputs import target_for
    from ..registry import find_model
    from .blockwise import segment_blocks
    from .cluster import open_client

    s, c, where, b = settings
    if c.probabilities or c.format:
        raise ValueError(
            "probabilities and an output format apply to ordinary files, not to large "
            "zarr/TIFF images (labels go to OME-Zarr)"
        )
    model = str(find_model(model))
    recorded = {**s.as_dict(), **b.as_dict()}
    started, statuses = time.perf_counter(), []
    report.planned(len(sources))
    with open_client(where) as client:
        place = "this process" if client is None else f"dask cluster {client.scheduler.address}"
        for source in sources:
            out = source if c.labels_name else target_for(source, output, len(sources))
            store = out / "labels" / c.labels_name if c.labels_name else out
            redo = c.skip_existing and store.exists()
            if redo and _finished(store, model, recorded):
                status = {"source": str(source), "target": str(store), "status": SKIPPED,
                          "summary": "its labels store is complete"}  # fmt: skip
            else:
                result = segment_blocks(
                    source, model, out, s, b, client=client, label_name=c.labels_name,
                    overwrite=c.overwrite or redo, progress=report.tiles,
                )  # fmt: skip
                _write_provenance(result, source, model, recorded, place)
                status = _done(source, result, place)
            statuses.append(status)
            report.finished(status)
    return CohortResult(statuses, time.perf_counter() - started)


def _done(source: Path, result: Any, place: str) -> dict[str, Any]:
    summary = (
        f"{result.seconds:.1f} s on {place}; {result.blocks} blocks, "
        f"{result.plan.describe()}; {result.normalization}"
    )
    if result.objects is not None:
        summary += f"; {result.objects} objects, ids unique over the image"
    return {"source": str(source), "target": result.path, "status": DONE,
            "seconds": result.seconds, "summary": summary, "pixels": {}}  # fmt: skip


def _finished(store: Path, model: str, settings: dict) -> bool:
    """The store is marked complete (its last write) and its sidecar names the same model
    and settings; anything else is redone."""
    from ..io.label_store import open_labels
    from ..io.provenance import file_sha256, read_sidecar

    try:
        open_labels(store)
    except (ValueError, OSError, KeyError):
        return False
    record = read_sidecar(store) or {}
    sha = file_sha256(model) if Path(model).is_file() else None
    same_model = (record.get("model") or {}).get("sha256") == sha
    return same_model and record.get("settings") == json.loads(json.dumps(settings))


def _write_provenance(result, source: Path, model: str, settings: dict, place: str) -> None:
    """``<store>.json`` beside the finished labels store (see io/provenance.py)."""
    from ..io.provenance import model_identity, provenance_record, write_sidecar

    record = provenance_record(
        result.path,
        source,
        model=model_identity(None, source=model),
        settings=settings,
        run={"device": place, "precision": "float32", "plan": result.plan.describe(),
             "seconds": result.seconds, "blocks": result.blocks},
    )  # fmt: skip
    write_sidecar(result.path, record)
