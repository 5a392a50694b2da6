"""``segment big.zarr -m MODEL -o labels.zarr``: one large image, block by block.

A zarr / OME-Zarr store or a TIFF above :data:`~..inference.sources.TIFF_LARGE_BYTES` is
segmented with :func:`~..inference.blockwise.segment_blocks` (in this process, on a
``LocalCluster`` of ``--workers N`` processes, or on the cluster at ``--scheduler``) and
its labels written to an OME-Zarr store: ``-o`` itself when it ends in ``.zarr``, else
``OUT/<name>_labels.zarr``; ``--labels-name NAME`` writes ``labels/NAME`` into an OME-Zarr
input instead. No torch in this module.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .common import progress_printer


def add_blockwise_options(parser: argparse.ArgumentParser) -> None:
    """``--block-size``, ``--labels-name`` and (unless the cohort options added them
    already) ``--workers``, ``--scheduler`` and ``--scheduler-timeout``."""
    from ..inference.blockwise import DEFAULT_BLOCK

    parser.add_argument(
        "--block-size",
        type=int,
        default=DEFAULT_BLOCK,
        metavar="PIXELS",
        help=f"side of the blocks a large zarr/TIFF image is cut into ({DEFAULT_BLOCK}); "
        "memory per block grows with (block + tile)^2",
    )
    parser.add_argument(
        "--labels-name",
        metavar="NAME",
        help="write the labels of an OME-Zarr input into its labels/NAME group",
    )
    known = parser._option_string_actions  # shared with the cohort options
    shared = {
        "--workers": {"type": int, "metavar": "N", "help": "a dask LocalCluster of N processes"},
        "--scheduler": {"metavar": "ADDRESS", "help": "the dask cluster at tcp://host:8786"},
        "--scheduler-timeout": {
            "type": float,
            "default": 10.0,
            "metavar": "SECONDS",
            "help": "how long to wait for --scheduler to answer (10)",
        },
    }
    for flag, options in shared.items():
        if flag not in known:
            parser.add_argument(flag, **options)


def large_inputs(inputs: list[str]) -> list[Path]:
    """The inputs to segment blockwise; all or none (a mix is refused)."""
    from ..io.large import is_large_source

    paths = [Path(p) for p in inputs]
    large = [p for p in paths if is_large_source(p)]
    if large and len(large) != len(paths):
        raise ValueError(
            f"{', '.join(p.name for p in large)} are large images (zarr or big TIFF), "
            "segmented block by block: segment them in a command of their own"
        )
    return large


def target_for(source: Path, output: Path, count: int) -> Path:
    """``output`` when it names a ``.zarr`` store (one input), else
    ``output/<stem>_labels.zarr``."""
    if output.suffix == ".zarr":
        if count > 1:
            raise ValueError(f"{output} names one store but {count} inputs were given")
        return output
    stem = source.name
    for ext in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif", ".tiff", ".tif", ".svs"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return output / f"{stem}_labels.zarr"


def run_blockwise(args: argparse.Namespace, settings, sources: list[Path]) -> int:
    """Segment each large input; 0 when all were written."""
    from ..inference.blockwise import DEFAULT_TILE, segment_blocks
    from ..inference.cluster import open_client
    from ..registry import find_model

    model = str(find_model(args.model))
    options = {
        "block_size": args.block_size,
        "tile_size": settings.tile_size or DEFAULT_TILE,
        "overlap": settings.overlap,
        "batch_size": settings.batch_size or 4,
        "threshold": settings.threshold,
        "tta": settings.tta,
        "device": settings.device,
        "overwrite": args.overwrite,
        "label_name": args.labels_name,
    }
    with open_client(
        workers=args.workers, scheduler=args.scheduler, timeout=args.scheduler_timeout
    ) as client:
        where = "this process" if client is None else f"dask cluster {client.scheduler.address}"
        for source in sources:
            out = source if args.labels_name else target_for(source, args.output, len(sources))
            redo = getattr(args, "skip_existing", False) and _labels_path(out, args).exists()
            if redo and _finished(out, args, model, _recorded(options)):
                print(f"{source}: skipped, its labels store is complete")
                continue
            started = time.perf_counter()
            result = segment_blocks(
                source, model, out, client=client,
                progress=progress_printer(source.name, "blocks"),
                **(options | {"overwrite": options["overwrite"] or redo}),
            )  # fmt: skip
            _write_provenance(result, source, model, _recorded(options), where)
            print(
                f"{source} -> {result.path}  ({time.perf_counter() - started:.1f} s on {where}; "
                f"{result.blocks} blocks, {result.plan.describe()}; {result.normalization})"
            )
    return 0


def _recorded(options: dict) -> dict:
    """The settings that decide the labels (what the sidecar records and compares)."""
    return {k: v for k, v in options.items() if k not in ("overwrite", "label_name")}


def _labels_path(out: Path, args: argparse.Namespace) -> Path:
    return out / "labels" / args.labels_name if args.labels_name else out


def _finished(out: Path, args: argparse.Namespace, model: str, options: dict) -> bool:
    """``--skip-existing``: the store is marked complete (its last write) and its sidecar
    names the same model and settings; anything else is redone (or refused as existing)."""
    from ..io.label_store import open_labels
    from ..io.provenance import file_sha256, read_sidecar

    path = _labels_path(out, args)
    try:
        open_labels(path)
    except (ValueError, OSError, KeyError):
        return False
    record = read_sidecar(path) or {}
    sha = file_sha256(model) if Path(model).is_file() else None
    same_model = (record.get("model") or {}).get("sha256") == sha
    return same_model and record.get("settings") == json.loads(json.dumps(options))


def _write_provenance(result, source: Path, model: str, options: dict, where: str) -> None:
    """``<store>.json`` beside the finished labels store (see inference/provenance.py)."""
    from ..io.provenance import model_identity, provenance_record, write_sidecar

    record = provenance_record(
        result.path,
        source,
        model=model_identity(None, source=model),
        settings=options,
        run={"device": where, "precision": "float32", "plan": result.plan.describe(),
             "seconds": result.seconds, "blocks": result.blocks},
    )  # fmt: skip
    write_sidecar(result.path, record)


def maybe_run_blockwise(args: argparse.Namespace, settings) -> int | None:
    """The hook of ``segment``: the exit code when the inputs are large, else None."""
    sources = large_inputs(list(args.inputs))
    if not sources:
        return None
    if getattr(args, "probabilities", False) or getattr(args, "format", None):
        print("error: --probabilities and --format apply to ordinary files, not to large "
              "zarr/TIFF images (labels go to OME-Zarr)", file=sys.stderr)  # fmt: skip
        return 2
    return run_blockwise(args, settings, sources)
