"""How images are segmented: in memory, block by block, on a cluster, over many files."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .checks import _choice, _device, _flag, _help, _int, _number
from .constants import BLENDINGS, DICOM_SEG, INSTANCE_METHODS, NETWORK_MULTIPLE


@dataclass(frozen=True)
class SegmentSettings:
    """How :func:`~napari_res101unet.segment` runs (API, CLI and Segment widget)."""

    tile_size: int | None = field(
        default=None, metadata=_help("tile side in pixels; None plans it from free memory")
    )
    overlap: float = field(default=0.25, metadata=_help("fraction of a tile shared"))
    batch_size: int | None = field(
        default=None, metadata=_help("tiles per forward pass; None plans it")
    )
    device: str = field(default="auto", metadata=_help("auto, cpu, cuda, cuda:N or mps"))
    tta: bool = field(default=False, metadata=_help("average over flips (4x slower)"))
    threshold: float = field(
        default=0.5, metadata=_help("foreground probability threshold for binary models")
    )
    blending: str = field(default="gaussian", metadata=_help("gaussian or constant"))
    mixed_precision: bool = field(default=True, metadata=_help("autocast on CUDA"))
    instances: bool = field(
        default=False,
        metadata=_help(
            "separate objects: one id per object (uint16, uint32 above 65,535 objects); "
            "multi-class models: objects per class, ids unique over all classes"
        ),
    )
    instance_method: str = field(
        default="auto",
        metadata=_help(
            "how objects are separated: auto (the model's instance head, else watershed), "
            "components, watershed (distance transform) or boundary (interior/contour head)"
        ),
    )
    per_slice: bool = field(
        default=False,
        metadata=_help("3D stacks: objects per 2D slice instead of in 3D"),
    )
    min_object_size: int | None = field(
        default=None,
        metadata=_help(
            "drop objects of fewer pixels (voxels); None: the size the model learned from "
            "its training objects (0 when it records none)",
            none="learned",
        ),
    )
    fill_holes: bool = field(default=True, metadata=_help("fill each object's holes"))

    def __post_init__(self) -> None:
        _int("tile_size", self.tile_size, NETWORK_MULTIPLE, none_ok=True)
        _number("overlap", self.overlap, 0.0, 0.9)
        _int("batch_size", self.batch_size, 1, none_ok=True)
        _device(self.device)
        _flag("tta", self.tta)
        _flag("mixed_precision", self.mixed_precision)
        if not (isinstance(self.threshold, (int, float)) and 0.0 < self.threshold < 1.0):
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold!r}")
        _choice("blending", self.blending, BLENDINGS)
        for name in ("instances", "per_slice", "fill_holes"):
            _flag(name, getattr(self, name))
        _choice("instance_method", self.instance_method, INSTANCE_METHODS)
        _int("min_object_size", self.min_object_size, 0, none_ok=True)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BlockwiseSettings:
    """How an image larger than memory is cut into blocks (:func:`~napari_res101unet.
    inference.blockwise.segment_blocks`; the CLI's ``segment`` of a zarr/TIFF, lazy layers).

    The blocks share one global tile grid, so its tile cannot be planned from free memory
    as for an image in memory: where :class:`SegmentSettings` leaves the tile size or the
    batch size automatic, ``auto_tile_size`` and ``auto_batch_size`` are used.
    """

    block_size: int = field(
        default=4096,
        metadata=_help(
            "side of the blocks a large zarr/TIFF image is cut into; memory per block grows "
            "with (block + tile)^2"
        ),
    )
    auto_tile_size: int = field(default=512, metadata=_help("tile side when the tile is auto"))
    auto_batch_size: int = field(default=4, metadata=_help("tiles per pass when batch is auto"))

    def __post_init__(self) -> None:
        _int("block_size", self.block_size, NETWORK_MULTIPLE)
        _int("auto_tile_size", self.auto_tile_size, NETWORK_MULTIPLE)
        _int("auto_batch_size", self.auto_batch_size, 1)

    def grid(self, segment: SegmentSettings) -> tuple[int, int]:
        """``(tile side, batch size)`` of the global grid under ``segment``'s settings."""
        return segment.tile_size or self.auto_tile_size, segment.batch_size or self.auto_batch_size

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ClusterSettings:
    """Where blocks or files run: this process, a local dask cluster, or a scheduler."""

    workers: int | None = field(
        default=None,
        metadata=_help("a dask LocalCluster of N worker processes", none="none"),
    )
    scheduler: str | None = field(
        default=None,
        metadata=_help(
            "the running dask scheduler at this address (tcp://host:8786)", none="none"
        ),
    )
    scheduler_timeout: float = field(
        default=10.0, metadata=_help("seconds to wait for the scheduler to answer")
    )

    def __post_init__(self) -> None:
        workers = self.workers
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):  # fmt: skip
            raise ValueError(f"workers must be a positive integer (or None); got {workers!r}")
        _number("scheduler_timeout", self.scheduler_timeout, 0.0, math.inf, open_low=True)
        if self.workers is not None and self.scheduler is not None:
            raise ValueError(
                "give either workers (a local cluster) or scheduler (an address), not both"
            )
        if self.scheduler is not None and (
            not isinstance(self.scheduler, str) or not self.scheduler.strip()
        ):
            raise ValueError(f"scheduler must be an address like 'tcp://host:8786'; got "
                             f"{self.scheduler!r}")  # fmt: skip

    @property
    def distributed(self) -> bool:
        """Whether the work goes to a dask cluster (local or remote)."""
        return self.workers is not None or self.scheduler is not None


@dataclass(frozen=True)
class CohortSettings:
    """What ``segment`` over many files writes: formats, resuming, which part of the list."""

    format: str | None = field(
        default=None,
        metadata=_help(
            "output suffix, e.g. .nii.gz, .tif, .png (default: like the input), or "
            f"'{DICOM_SEG}' for a DICOM Segmentation of a DICOM input",
            none="like the input",
        ),
    )
    probabilities: bool = field(
        default=False, metadata=_help("also write the probability map (<name>_probabilities.tif)")
    )
    axis: int = field(default=0, metadata=_help("slice axis of 3D volumes"))
    pixel_size: float | None = field(
        default=None,
        metadata=_help("in-plane pixel size of the inputs (wins over the files')", none="files'"),
    )
    overwrite: bool = field(
        default=False,
        metadata=_help("replace existing outputs (never an input, nor another input's output)"),
    )
    skip_existing: bool = field(
        default=False,
        metadata=_help("skip inputs whose outputs exist with a matching provenance sidecar"),
    )
    recursive: bool = field(default=False, metadata=_help("also take images in subfolders"))
    part: str | None = field(
        default=None, metadata=_help("only part K/N of the sorted inputs", none="all")
    )
    labels_name: str | None = field(
        default=None,
        metadata=_help("write the labels of an OME-Zarr input into its labels/NAME group"),
    )

    def __post_init__(self) -> None:
        for name in ("probabilities", "overwrite", "skip_existing", "recursive"):
            _flag(name, getattr(self, name))
        _int("axis", self.axis, -4)
        if self.skip_existing and self.overwrite:
            raise ValueError("skip_existing and overwrite exclude each other: pick one")
        if self.pixel_size is not None:
            _number("pixel_size", self.pixel_size, 0.0, math.inf, open_low=True)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SEGMENT_DEFAULTS = MappingProxyType(SegmentSettings().as_dict())
"""The defaults of :class:`SegmentSettings` as a read-only mapping (for display)."""
