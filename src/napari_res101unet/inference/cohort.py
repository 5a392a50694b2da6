"""Segment many files: a cohort of scans or slides, from Python, napari or the command line.

:func:`segment_files` plans every output first (collisions, inputs, existing files are
refused before any work), skips finished outputs (``skip_existing``: a provenance sidecar
naming the same input, model and settings), takes one part of the list (``part="K/N"``,
for job arrays), then runs each file in its own ``try`` (a failure is reported and the
others go on), in this process or spread over dask workers
(:func:`~.cohort_file.worker_task`). Images larger than memory (zarr, OME-Zarr, big TIFF)
are segmented block by block instead (:mod:`.cohort_blocks`). No torch on import.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..config import (
    DICOM_SEG,
    BlockwiseSettings,
    ClusterSettings,
    CohortSettings,
    SegmentSettings,
    settings_with,
    split_fields,
)
from ..errors import explain
from ..io.outputs import OutputsRefused
from .cohort_file import (
    SKIPPED,
    CohortOptions,
    CohortProgress,
    CohortResult,
    FileTask,
    check_dicom_inputs,
    failed_status,
    outputs_of,
    segment_file,
    worker_task,
)


def segment_files(
    inputs: Any,
    model: str | os.PathLike,
    output: str | os.PathLike,
    settings: SegmentSettings | None = None,
    cohort: CohortSettings | None = None,
    cluster: ClusterSettings | None = None,
    *,
    blockwise: BlockwiseSettings | None = None,
    progress: CohortProgress | None = None,
    **fields: Any,
) -> CohortResult:
    """Segment image files into label files (with their geometry) in ``output``.

    Parameters
    ----------
    inputs : path, str or sequence of them
        Image files, folders (a DICOM series, or the images in it; with ``recursive``,
        those of its subfolders too), globs (``scans/*.nii.gz``; ``**`` crosses folders) or
        ``@list.txt`` files (paths, one a line, ``#`` comments); see
        :func:`napari_res101unet.io.inputs.expand_inputs`.
    model : str or path
        A model file, a name in the model folder, or ``"untrained"`` (not on a cluster).
    output : path
        The output folder: ``<name>_labels<ext>`` per input (folders of several inputs are
        mirrored below it); for a single large input, a ``.zarr`` path names the store.
    settings, cohort, cluster, blockwise
        How to segment (:class:`~napari_res101unet.config.SegmentSettings`), what to write
        and resume (:class:`~napari_res101unet.config.CohortSettings`), where to run
        (:class:`~napari_res101unet.config.ClusterSettings`: this process, a local dask
        cluster of ``workers`` processes, or a ``scheduler``) and how large images are cut
        (:class:`~napari_res101unet.config.BlockwiseSettings`); the defaults when None.
    progress : CohortProgress, optional
        Told what happens while it runs.
    **fields
        Fields of any of the four settings classes, overriding them (a name two have,
        ``tile_size``, is the segmentation's).

    Returns
    -------
    CohortResult
        One status per input; failed files do not raise (see ``result.failed``).

    Raises
    ------
    ValueError
        Before any work: no input, a folder or glob without images, a bad ``part``,
        outputs that collide, are inputs or exist (unless ``overwrite`` or
        ``skip_existing``), large and ordinary images mixed, ``untrained`` on a cluster.
    """
    parts = split_fields(fields, SegmentSettings, CohortSettings, ClusterSettings,
                         BlockwiseSettings)  # fmt: skip
    s = settings_with(SegmentSettings, settings, parts[0])
    c = settings_with(CohortSettings, cohort, parts[1])
    where = settings_with(ClusterSettings, cluster, parts[2])
    b = settings_with(BlockwiseSettings, blockwise, parts[3])
    report = progress or CohortProgress()
    items = [str(inputs)] if isinstance(inputs, (str, os.PathLike)) else [str(i) for i in inputs]
    if not items:
        raise ValueError("no input: give files, folders, globs or @list.txt")
    from ..io.inputs import large_inputs

    large = large_inputs(items)
    if large:
        from .cohort_blocks import segment_large_files

        return segment_large_files(large, model, Path(output), (s, c, where, b), report)
    return _segment_ordinary(items, model, Path(output), (s, c, where), report)


def _segment_ordinary(items, model, output: Path, settings: tuple, report) -> CohortResult:
    """Files that fit in memory: plan, resume, then run here or on dask workers."""
    from ..io.inputs import expand_inputs, parse_part, select_part
    from ..registry import UNTRAINED, find_model

    s, c, where = settings
    part = parse_part(c.part)
    sources = expand_inputs(items, recursive=c.recursive)
    found = find_model(model)
    if where.distributed and found == UNTRAINED:
        raise ValueError("a cluster needs a model file: 'untrained' differs per worker")
    options = CohortOptions(s, c, str(found))
    present = [p for p in sources if p.exists()]
    if c.format == DICOM_SEG:
        check_dicom_inputs([str(p) for p in present])
    chosen = select_part(sources, part)
    if not chosen:
        return CohortResult(note=f"part {part[0]}/{part[1]}: no files (the list has "
                                 f"{len(sources)})")  # fmt: skip
    started = time.perf_counter()
    tasks = [t for t in plan_tasks(present, output, c) if Path(t.source) in set(chosen)]
    statuses = [failed_status(str(p), f"{p} does not exist") for p in chosen if not p.exists()]
    todo, skipped = _resume(tasks, options, report)
    report.planned(len(todo) + len(statuses) + len(skipped))
    for status in statuses + skipped:
        report.finished(status)
    statuses += skipped
    if todo and where.distributed:
        statuses += run_distributed(todo, options, where, report)
    elif todo:
        statuses += run_local(todo, options, report)
    return CohortResult(statuses, time.perf_counter() - started)


def plan_tasks(sources: list[Path], output: Path, cohort: CohortSettings) -> list[FileTask]:
    """Outputs of all inputs (the mirrored folders follow the whole list, so every part
    plans the same paths); collisions and outputs that are inputs refused."""
    from ..io.outputs import plan_outputs

    if not sources:
        return []
    plans = plan_outputs(
        sources, output, cohort.format, probabilities=cohort.probabilities, overwrite=True
    )
    return [FileTask(str(s), str(t), None if p is None else str(p)) for s, t, p in plans]


def _resume(tasks: list[FileTask], options: CohortOptions, report: CohortProgress):
    """``(to do, skipped statuses)``; existing outputs refused unless one flag allows."""
    from ..io.provenance import file_sha256, is_complete

    c = options.cohort
    todo, skipped, existing = [], [], []
    model = None
    if c.skip_existing and Path(options.model_source).is_file():
        model = {"sha256": file_sha256(options.model_source)}
    for task in tasks:
        there = [o for o in outputs_of(task) if Path(o).exists()]
        if not there or c.overwrite:
            todo.append(task)
        elif not c.skip_existing:
            existing += [(o, task.source) for o in there]
        else:
            why = [is_complete(o, task.source, model=model, settings=options.record_settings())
                   for o in outputs_of(task)]  # fmt: skip
            reasons = [reason for ok, reason in why if not ok]
            if reasons:
                report.note(f"redoing {task.source}: {reasons[0]}")
                todo.append(task)
            else:
                skipped.append({"source": task.source, "target": task.target, "status": SKIPPED})
    if existing:
        problems = [f"{target}: the output of {source} already exists"
                    for target, source in existing]  # fmt: skip
        raise OutputsRefused(
            f"{len(existing)} output(s) would collide or overwrite (listed above); pass "
            "--overwrite to replace existing files, or --skip-existing to keep finished ones",
            problems,
        )
    return todo, skipped


def run_local(tasks: list[FileTask], options: CohortOptions, report: CohortProgress) -> list:
    """Each file in this process, the model opened once."""
    from .. import registry
    from ..io.provenance import model_identity

    model = registry.open_model(options.model_source, options.settings.device)
    identity = model_identity(model)
    statuses = []
    for task in tasks:
        report.started(task.source)
        try:
            status = segment_file(task, model, identity, options, progress=report.tiles)
        except Exception as exc:  # one bad file must not stop the cohort
            status = failed_status(task.source, explain(exc))
        statuses.append(status)
        report.finished(status)
    return statuses


def run_distributed(
    tasks: list[FileTask], options: CohortOptions, where: ClusterSettings, report
) -> list:
    """Each file on a dask worker (a LocalCluster of ``workers`` processes of one thread,
    or the cluster at ``scheduler``); statuses come back as files finish."""
    try:
        from distributed import as_completed
    except ImportError:
        raise RuntimeError(
            "a dask cluster needs dask.distributed: pip install 'napari-res101unet[distributed]'"
        ) from None
    from .cluster import open_client

    statuses = []
    with open_client(where) as client:
        futures = client.map(worker_task, tasks, options=options, pure=False)
        source_of = {f.key: t.source for f, t in zip(futures, tasks)}
        for future in as_completed(futures):
            try:
                status = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or could not run it
                status = failed_status(source_of[future.key], explain(exc))
            statuses.append(status)
            report.finished(status)
    return statuses
