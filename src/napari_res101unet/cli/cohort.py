"""``segment`` over a cohort: plan every output, skip finished ones, run each file in its
own ``try`` (a failure is reported and the others go on), in this process or spread over
dask workers (:func:`.cohort_file.worker_task`), and end with a summary. No torch on
import.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import explain
from .cohort_file import (
    DICOM_SEG,
    DONE,
    FAILED,
    SKIPPED,
    CohortOptions,
    FileTask,
    check_dicom_inputs,
    failed_status,
    outputs_of,
    segment_file,
    worker_task,
)
from .inputs import expand_inputs, parse_part, select_part
from .progress import FileBar


def run_cohort(args: argparse.Namespace, settings, plan_outputs: Callable) -> int:
    """The ``segment`` command: returns 0, or 1 when any file failed.

    ``plan_outputs`` is ``cli.segment.plan_outputs`` (the outputs of a list of inputs)."""
    from ..registry import UNTRAINED, find_model

    _check_flags(args)
    part = parse_part(args.part)
    sources = expand_inputs(args.inputs, recursive=args.recursive, lists=args.from_list or ())
    found = find_model(args.model)
    options = CohortOptions(
        settings.as_dict(), args.axis, args.format, args.probabilities, str(found),
        getattr(args, "pixel_size", None),
    )  # fmt: skip
    distributed = args.workers is not None or args.scheduler is not None
    if distributed and found == UNTRAINED:
        raise ValueError(
            "--workers/--scheduler need a model file (-m): 'untrained' differs per worker"
        )
    present = [s for s in sources if s.exists()]
    if args.format == DICOM_SEG:
        check_dicom_inputs([str(s) for s in present])
    chosen = select_part(sources, part)
    if not chosen:
        print(f"part {part[0]}/{part[1]}: no files (the list has {len(sources)})")
        return 0
    picked = set(chosen)
    tasks = [t for t in plan_tasks(present, args, plan_outputs) if Path(t.source) in picked]
    started = time.perf_counter()
    statuses = [failed_status(str(s), f"{s} does not exist") for s in chosen if not s.exists()]
    for status in statuses:
        _report(status, None)
    todo, skipped = _resume(tasks, options, args.skip_existing, args.overwrite)
    statuses += skipped
    with FileBar(len(todo) + len(statuses)) as bar:
        bar.advance(len(statuses))
        if todo and distributed:
            statuses += run_distributed(todo, options, args, bar)
        elif todo:
            statuses += run_local(todo, options, bar)
    return _summary(statuses, time.perf_counter() - started)


def _check_flags(args: argparse.Namespace) -> None:
    """Options that exclude each other, and the numbers, before any work."""
    if args.skip_existing and args.overwrite:
        raise ValueError("--skip-existing and --overwrite exclude each other: pick one")
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("--workers and --scheduler exclude each other: pick one")
    if not args.inputs and not args.from_list:
        raise ValueError("no input: give files, folders, globs, @list.txt or --from-list")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")


def plan_tasks(
    sources: list[Path], args: argparse.Namespace, plan_outputs: Callable
) -> list[FileTask]:
    """Outputs of all inputs (the mirrored folders follow the whole list, so every
    ``--part`` plans the same paths); collisions and outputs that are inputs refused."""
    if not sources:
        return []
    plans = plan_outputs(
        sources, args.output, args.format, probabilities=args.probabilities, overwrite=True
    )
    return [FileTask(str(s), str(t), None if p is None else str(p)) for s, t, p in plans]


def _resume(
    tasks: list[FileTask], options: CohortOptions, skip: bool, overwrite: bool
) -> tuple[list[FileTask], list[dict]]:
    """``(to do, skipped statuses)``; existing outputs refused unless one flag allows."""
    from ..io.provenance import file_sha256, is_complete

    todo, skipped, existing = [], [], []
    model = None
    if skip and Path(options.model_source).is_file():
        model = {"sha256": file_sha256(options.model_source)}
    for task in tasks:
        there = [o for o in outputs_of(task) if Path(o).exists()]
        if not there or overwrite:
            todo.append(task)
        elif not skip:
            existing += [(o, task.source) for o in there]
        else:
            why = [is_complete(o, task.source, model=model, settings=options.record_settings())
                   for o in outputs_of(task)]  # fmt: skip
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
    from ..io.provenance import model_identity
    from .common import load_cli_model

    model = load_cli_model(options.model_source, options.settings["device"])
    identity = model_identity(model)
    statuses = []
    for task in tasks:
        bar.start(Path(task.source).name)
        try:
            status = segment_file(task, model, identity, options, progress=bar.tiles)
        except Exception as exc:  # one bad file must not stop the cohort
            status = failed_status(task.source, explain(exc))
        statuses.append(status)
        _report(status, bar)
    return statuses


def run_distributed(
    tasks: list[FileTask], options: CohortOptions, args: argparse.Namespace, bar: FileBar
) -> list[dict]:
    """Each file on a dask worker (a LocalCluster of ``args.workers`` processes of one
    thread, or the cluster at ``args.scheduler``); statuses come back as files finish."""
    try:
        from distributed import as_completed
    except ImportError:
        raise RuntimeError(
            "--workers/--scheduler need dask.distributed: "
            "pip install 'napari-res101unet[distributed]'"
        ) from None
    from ..inference.cluster import open_client

    statuses = []
    with open_client(
        workers=args.workers, scheduler=args.scheduler, timeout=args.scheduler_timeout
    ) as client:
        futures = client.map(worker_task, tasks, options=options, pure=False)
        where = {f.key: t for f, t in zip(futures, tasks)}
        for future in as_completed(futures):
            try:
                status = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or could not run it
                status = failed_status(where[future.key].source, explain(exc))
            statuses.append(status)
            _report(status, bar)
    return statuses


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
