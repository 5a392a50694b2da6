"""Provenance sidecars: a JSON record of what made an output, written after the output.

Every output ``<folder>/<name>`` (a labels file, a probability map, a zarr store) gets
``<folder>/<name>.json``, written atomically *after* the output's own atomic write. So an
output whose sidecar is missing, unreadable or does not describe it (its size or SHA-256
differ) is unfinished: ``segment --skip-existing`` redoes it. The record holds the model
(name, checkpoint file and SHA-256), the plugin/torch/smp versions, the settings, the
device and precision, the tile plan, the time (UTC, ISO 8601), the input (path relative to
the output's folder where possible, size in bytes and modification time) and the output.

No torch on import (versions are read when a record is made). Used by the ``segment``
command and usable by any writer: :func:`model_identity`, :func:`provenance_record`,
:func:`write_sidecar`, then :func:`is_complete` to check.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from .files import atomic_target, file_sha256

FORMAT = "napari-res101unet provenance 1"
SIDECAR_SUFFIX = ".json"
RUN_FIELDS = ("device", "precision", "plan", "seconds")


def sidecar_path(output: str | os.PathLike) -> Path:
    """``<output>.json`` beside ``output`` (``x_labels.nii.gz`` -> ``x_labels.nii.gz.json``)."""
    output = Path(output)
    return output.with_name(output.name + SIDECAR_SUFFIX)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _iso(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).isoformat(timespec="seconds")


def _files(path: Path) -> list[Path]:
    """The files a path stands for: itself, or those below a folder (DICOM series, zarr)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """``{"bytes", "mtime"}`` of a file or a folder (all files below it, latest mtime)."""
    stats = [p.stat() for p in _files(Path(path))]
    latest = max((s.st_mtime for s in stats), default=0.0)
    return {"bytes": int(sum(s.st_size for s in stats)), "mtime": _iso(latest)}


def _output_fingerprint(path: Path) -> dict[str, Any]:
    found = fingerprint(path)
    found["sha256"] = None if path.is_dir() else file_sha256(path)
    return found


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` where possible (same drive), else absolute."""
    try:
        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def versions() -> dict[str, str]:
    """Versions of the plugin, torch and segmentation-models-pytorch."""
    import segmentation_models_pytorch as smp
    import torch

    from .. import __version__

    return {
        "napari_res101unet": __version__,
        "torch": torch.__version__,
        "segmentation_models_pytorch": smp.__version__,
    }


def model_identity(model: Any, source: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"name", "file", "sha256"}`` of a model; file and sha256 are None when it was not
    loaded from a checkpoint (e.g. ``untrained``)."""
    spec = getattr(model, "spec", None)
    path = source or getattr(model, "checkpoint_path", None)
    path = Path(path) if path and Path(path).is_file() else None
    return {
        "name": str(getattr(spec, "name", None) or "Res101_UNet"),
        "file": path.name if path else None,
        "sha256": file_sha256(path) if path else None,
    }


def provenance_record(
    output: str | os.PathLike,
    source: str | os.PathLike,
    *,
    model: dict[str, Any],
    settings: dict[str, Any],
    run: dict[str, Any],
) -> dict[str, Any]:
    """The sidecar of ``output`` (written already) made from ``source``.

    Parameters
    ----------
    model : dict
        :func:`model_identity` of the model used.
    settings : dict
        What decides the result: ``SegmentSettings.as_dict()`` plus options such as the
        slice axis.
    run : dict
        What the run reported: ``device``, ``precision``, ``plan`` (its description),
        ``seconds``, and anything else worth keeping (other outputs of the same input).
    """
    output, source = Path(output), Path(source)
    record = {
        "format": FORMAT,
        "output": {"path": output.name, **_output_fingerprint(output)},
        "input": {"path": _relative(source, output.parent), **fingerprint(source)},
        "model": dict(model),
        "versions": versions(),
        "settings": dict(settings),
        **{k: run.get(k) for k in RUN_FIELDS},
        "time": utc_now(),
    }
    record.update({k: v for k, v in run.items() if k not in record})
    return record


def write_sidecar(output: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` to ``<output>.json`` atomically; call it after the output is
    written (the sidecar is what marks the output complete)."""
    path = sidecar_path(output)
    with atomic_target(path, suffix=".json.tmp") as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_sidecar(output: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar of ``output``, or None when it is missing or not a valid record."""
    try:
        record = json.loads(sidecar_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def is_complete(
    output: str | os.PathLike,
    source: str | os.PathLike,
    *,
    model: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[bool, str]:
    """``(complete, why not)`` for an existing ``output`` made from ``source``.

    Complete means: the output exists; its sidecar exists and describes it (size, and
    SHA-256 for a file); the input has the recorded size and modification time; and,
    when given, the model's SHA-256 and the settings are those recorded.
    """
    output = Path(output)
    if not output.exists():
        return False, "no output"
    record = read_sidecar(output)
    if record is None:
        return False, f"no valid provenance sidecar {sidecar_path(output).name}"
    recorded = record.get("output") or {}
    found = _output_fingerprint(output)
    if recorded.get("bytes") != found["bytes"] or recorded.get("sha256") != found["sha256"]:
        return False, "the output is not the one its sidecar describes"
    if {k: (record.get("input") or {}).get(k) for k in ("bytes", "mtime")} != fingerprint(source):
        return False, "the input changed since"
    if model is not None and (record.get("model") or {}).get("sha256") != model.get("sha256"):
        return False, "made by another model"
    if settings is not None and record.get("settings") != json.loads(json.dumps(settings)):
        return False, "made with other settings"
    return True, ""
