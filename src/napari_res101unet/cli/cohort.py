"""``segment`` over a cohort: plan every output, skip finished ones, run each file in its
own ``try`` (a failure is reported and the others go on), in this process or spread over
dask workers, and end with a summary. No torch on import.

One file is done by :func:`segment_file`: read, segment, write the outputs atomically,
then their provenance sidecars (:mod:`..inference.provenance`), the labels' last. The
dask path sends each worker a small :class:`FileTask`; the worker loads the model once
(``cluster.worker_model``), reads its file, writes its outputs and returns a small status
dict, so no image or label array passes through the client.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import explain
from .inputs import expand_inputs, parse_part, select_part
from .progress import FileBar

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

    settings: dict[str, Any]
    axis: int = 0
    fmt: str | None = None
    probabilities: bool = False
    model_source: str = "untrained"
    extra: dict[str, Any] = field(default_factory=dict)

    def record_settings(self) -> dict[str, Any]:
        """What the sidecar records as settings (and what ``--skip-existing`` compares)."""
        return {**self.settings, "axis": self.axis}


def run_cohort(args: argparse.Namespace, settings) -> int:
    """The ``segment`` command: returns 0, or 1 when any file failed."""
    from ..registry import UNTRAINED, find_model
    from .segment import DICOM_SEG, _check_dicom_inputs

    if args.skip_existing and args.overwrite:
        raise ValueError("--skip-existing and --overwrite exclude each other: pick one")
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("--workers and --scheduler exclude each other: pick one")
    if not args.inputs and not args.from_list:
        raise ValueError("no input: give files, folders, globs, @list.txt or --from-list")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    part = parse_part(args.part)
    sources = expand_inputs(args.inputs, recursive=args.recursive, lists=args.from_list or ())
    found = find_model(args.model)
    options = CohortOptions(
        settings.as_dict(), args.axis, args.format, args.probabilities, str(found)
    )
    distributed = args.workers is not None or args.scheduler is not None
    if distributed and found == UNTRAINED:
        raise ValueError(
            "--workers/--scheduler need a model file (-m): 'untrained' differs per worker"
        )
    present = [s for s in sources if s.exists()]
    if args.format == DICOM_SEG:
        _check_dicom_inputs([str(s) for s in present])
    chosen = select_part(sources, part)
    if not chosen:
        print(f"part {part[0]}/{part[1]}: no files (the list has {len(sources)})")
        return 0
    picked = set(chosen)
    tasks = [t for t in plan_tasks(present, args) if Path(t.source) in picked]
    started = time.perf_counter()
    statuses = [_failed(str(s), f"{s} does not exist") for s in chosen if not s.exists()]
    for status in statuses:
        _report(status, None)
    todo, skipped = _resume(tasks, options, args.skip_existing, args.overwrite)
    statuses += skipped
    with FileBar(len(todo) + len(statuses)) as bar:
        bar.advance(len(statuses))
        if todo and distributed:
            statuses += run_distributed(todo, options, args.workers, args.scheduler, bar)
        elif todo:
            statuses += run_local(todo, options, bar)
    return _summary(statuses, time.perf_counter() - started)


def plan_tasks(sources: list[Path], args: argparse.Namespace) -> list[FileTask]:
    """Outputs of all inputs (the mirrored folders follow the whole list, so every
    ``--part`` plans the same paths); collisions and outputs that are inputs refused."""
    from .segment import plan_outputs

    if not sources:
        return []
    plans = plan_outputs(
        sources, args.output, args.format, probabilities=args.probabilities, overwrite=True
    )
    return [FileTask(str(s), str(t), None if p is None else str(p)) for s, t, p in plans]


def _outputs(task: FileTask) -> list[str]:
    return [task.target] + ([task.probabilities] if task.probabilities else [])


def _resume(
    tasks: list[FileTask], options: CohortOptions, skip: bool, overwrite: bool
) -> tuple[list[FileTask], list[dict]]:
    """``(to do, skipped statuses)``; existing outputs refused unless one flag allows."""
    from ..inference.provenance import file_sha256, is_complete

    todo, skipped, existing = [], [], []
    model = None
    if skip and Path(options.model_source).is_file():
        model = {"sha256": file_sha256(options.model_source)}
    for task in tasks:
        there = [o for o in _outputs(task) if Path(o).exists()]
        if not there or overwrite:
            todo.append(task)
        elif not skip:
            existing += [(o, task.source) for o in there]
        else:
            why = [is_complete(o, task.source, model=model, settings=options.record_settings())
                   for o in _outputs(task)]  # fmt: skip
            reasons = [reason for ok, reason in why if not ok]
            if reasons:
                print(f"redoing {task.source}: {reasons[0]}", file=sys.stderr)
                todo.append(task)
            else:
                skipped.append({"source": task.source, "target": task.target, "status": SKIPPED})
    if existing:
        _refuse_existing(existing)
    return todo, skipped


def _refuse_existing(existing: list[tuple[str, str]]) -> None:
    print("refusing to write (nothing was written):", file=sys.stderr)
    for target, source in existing:
        print(f"  {target}: the output of {source} already exists", file=sys.stderr)
    raise ValueError(
        f"{len(existing)} output(s) would collide or overwrite (listed above); pass "
        "--overwrite to replace existing files, or --skip-existing to keep finished ones"
    )


def run_local(tasks: list[FileTask], options: CohortOptions, bar: FileBar) -> list[dict]:
    """Each file in this process, the model loaded once."""
    from ..inference.provenance import model_identity
    from .common import load_cli_model

    model = load_cli_model(options.model_source, options.settings["device"])
    identity = model_identity(model)
    statuses = []
    for task in tasks:
        bar.start(Path(task.source).name)
        try:
            status = segment_file(task, model, identity, options, progress=bar.tiles)
        except Exception as exc:  # one bad file must not stop the cohort
            status = _failed(task.source, explain(exc))
        statuses.append(status)
        _report(status, bar)
    return statuses


def run_distributed(
    tasks: list[FileTask], options: CohortOptions, workers, scheduler, bar: FileBar
) -> list[dict]:
    """Each file on a dask worker (a LocalCluster of ``workers`` processes, or the
    cluster at ``scheduler``); statuses come back as the files finish."""
    from distributed import as_completed

    from ..inference.cluster import open_client

    statuses = []
    with open_client(workers=workers, scheduler=scheduler) as client:
        futures = client.map(worker_task, tasks, options=options, pure=False)
        where = {f.key: t for f, t in zip(futures, tasks)}
        for future in as_completed(futures):
            try:
                status = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or could not run it
                status = _failed(where[future.key].source, explain(exc))
            statuses.append(status)
            _report(status, bar)
    return statuses


def worker_task(task: FileTask, options: CohortOptions) -> dict:
    """One file on a dask worker: the worker's cached model, a small status back."""
    from ..inference.cluster import worker_model
    from ..inference.provenance import model_identity

    try:
        model = worker_model(options.model_source, device=options.settings["device"])
        return segment_file(task, model, model_identity(model, options.model_source), options)
    except Exception as exc:
        return _failed(task.source, explain(exc))


def segment_file(
    task: FileTask, model, identity: dict, options: CohortOptions, progress=None
) -> dict[str, Any]:
    """Read, segment and write one input; the sidecars last. Returns a status dict."""
    import numpy as np

    from ..inference.segment import run_segmentation
    from ..io import read_image, write_labels
    from .segment import DICOM_SEG, _write_dicom_seg, _write_probabilities

    source, target = Path(task.source), Path(task.target)
    image = read_image(source, labels=False)  # an input is an image, whatever its name
    result = run_segmentation(
        image.data, model, axis=options.axis, return_probabilities=options.probabilities,
        channel_axis=-1 if image.rgb else None, progress=progress, **options.settings,
    )  # fmt: skip
    geometry = {
        "spacing": image.spacing,
        "origin": image.origin,
        "direction": image.direction,
        "unit": image.metadata.get("unit"),
        "nifti": image.metadata.get("nifti"),
    }
    if options.fmt == DICOM_SEG:
        _write_dicom_seg(target, source, result.labels, model)
    else:
        write_labels(target, result.labels, **geometry)
    probs = Path(task.probabilities) if task.probabilities else None
    if result.probabilities is not None and probs is not None:
        _write_probabilities(probs, result, geometry)
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
    from ..inference.provenance import provenance_record, write_sidecar

    run = {
        "device": result.device,
        "precision": result.precision,
        "plan": result.plan.describe(),
        "seconds": round(result.seconds, 3),
        "normalization": result.normalization,
        "class_names": result.class_names,
        "format": options.fmt,
    }
    outputs = {"labels": Path(task.target).name}
    if task.probabilities:
        outputs["probabilities"] = Path(task.probabilities).name
    for output in reversed(_outputs(task)):
        record = provenance_record(
            output, task.source, model=identity, settings=options.record_settings(),
            run={**run, "outputs": outputs},
        )  # fmt: skip
        write_sidecar(output, record)


def _failed(source: str, reason: str) -> dict[str, Any]:
    return {"source": source, "status": FAILED, "reason": reason}


def _report(status: dict, bar: FileBar | None) -> None:
    """One line per finished file (failures on stderr, naming the file and why)."""
    if status["status"] == DONE:
        line = (
            f"{status['source']} -> {status['target']}  ({status['seconds']:.1f} s; "
            f"{status['summary']}; label pixels {status['pixels']})"
        )
        stream = sys.stdout
    else:
        line, stream = f"failed: {status['source']}: {status['reason']}", sys.stderr
    if bar is None:
        print(line, file=stream, flush=True)
    else:
        bar.line(line, stream)
        bar.advance()


def _summary(statuses: list[dict], seconds: float) -> int:
    """Print ``done D, skipped S, failed F of N files in T s``; 1 when any failed."""
    count = {k: sum(s["status"] == k for s in statuses) for k in (DONE, SKIPPED, FAILED)}
    rate = f", {count[DONE] / seconds:.2f} files/s" if count[DONE] and seconds > 0 else ""
    print(
        f"done {count[DONE]}, skipped {count[SKIPPED]}, failed {count[FAILED]} of "
        f"{len(statuses)} file(s) in {seconds:.1f} s{rate}",
        flush=True,
    )
    failed = [s for s in statuses if s["status"] == FAILED]
    if not failed:
        return 0
    print(
        f"error: {len(failed)} of {len(statuses)} file(s) failed (listed above); the first: "
        f"{failed[0]['reason']}",
        file=sys.stderr,
    )
    return 1
