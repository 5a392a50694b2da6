"""Settings shared by the Python API, the CLI and the widgets: the one source of defaults.

:class:`SegmentSettings` and :class:`TrainSettings` are frozen dataclasses, validated once
when made; a value is changed only with :func:`dataclasses.replace` (which validates
again). Each field's ``metadata["help"]`` is the text the CLI shows. Nothing here imports
torch or Qt, so widgets can read the defaults while napari starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

ARCHITECTURE = "Res101_UNet"
"""Name written into every checkpoint; a file naming another architecture is refused."""

ENCODER_NAME = "resnet101"
"""The segmentation-models-pytorch encoder behind Res101_UNet."""

NETWORK_MULTIPLE = 32
"""Spatial sizes fed to the network are padded to a multiple of this (5 down-samplings)."""

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint JSON; bumped when its meaning changes."""

DEVICES = ("auto", "cpu", "cuda", "mps")
"""Device names accepted everywhere (``cuda:N`` too)."""

ALL_GPUS = "cuda:all"
"""Training on every local GPU (one DDP rank each; the Train widget offers it when the
engine reports two or more CUDA devices)."""

NORMALIZATIONS = ("auto", "imagenet", "percentile", "window", "minmax", "none")
"""Input normalisations a model spec may name (see
:mod:`napari_res101unet.preprocess.normalize`)."""

BLENDINGS = ("gaussian", "constant")
"""How overlapping tiles are blended."""

SPARSE_IGNORE = 255
"""Label value that sparse labels' 0 ("not annotated") becomes (see ``TrainSettings.sparse``)."""


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


def _int(name: str, value: Any, minimum: int, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if none_ok else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}, got {value!r}")


def _number(
    name: str, value: Any, low: float, high: float, *, open_low: bool = False, none_ok=False
) -> None:
    if value is None and none_ok:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def _device(value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"device must be a string such as 'auto' or 'cuda:0', got {value!r}")


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

    def __post_init__(self) -> None:
        _int("tile_size", self.tile_size, NETWORK_MULTIPLE, none_ok=True)
        _number("overlap", self.overlap, 0.0, 0.9)
        _int("batch_size", self.batch_size, 1, none_ok=True)
        _device(self.device)
        _flag("tta", self.tta)
        _flag("mixed_precision", self.mixed_precision)
        if not (isinstance(self.threshold, (int, float)) and 0.0 < self.threshold < 1.0):
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold!r}")
        if self.blending not in BLENDINGS:
            raise ValueError(f"blending must be one of {BLENDINGS}, got {self.blending!r}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainSettings:
    """What :func:`~napari_res101unet.train` is asked to do (API, CLI and Train widget).

    ``None`` means "decided by the run" (see :class:`napari_res101unet.training.TrainPlan`
    for the values it decides); the checkpoint's training record holds both.
    """

    epochs: int = field(default=30, metadata=_help("epochs"))
    patch_size: int = field(default=256, metadata=_help("patch side (multiple of 32)"))
    batch_size: int = field(default=4, metadata=_help("patches per step (per process)"))
    learning_rate: float | None = field(
        default=None,
        metadata=_help(
            "peak learning rate of the decoder; auto: 1e-3 from random weights, 3e-4 when "
            "fine-tuning"
        ),
    )
    encoder_learning_rate_factor: float = field(
        default=0.1, metadata=_help("encoder lr = learning rate x this, once unfrozen")
    )
    freeze_encoder_epochs: int = field(
        default=2, metadata=_help("epochs with a frozen (pretrained) encoder")
    )
    weight_decay: float = field(default=1e-4, metadata=_help("AdamW weight decay"))
    val_fraction: float = field(
        default=0.2, metadata=_help("share held out for validation when no validation pairs")
    )
    steps_per_epoch: int | None = field(
        default=None, metadata=_help("steps per epoch (auto: one pass over the pixels)")
    )
    foreground_fraction: float = field(
        default=0.5, metadata=_help("share of patches centred on an object")
    )
    augment: bool = field(default=True, metadata=_help("flips, rotations, scale, intensity"))
    early_stopping: int | None = field(
        default=10, metadata=_help("stop after N epochs without better val IoU (0/None: never)")
    )
    max_minutes: float | None = field(
        default=None, metadata=_help("wall-clock budget in minutes", none="no limit")
    )
    ignore_index: int | None = field(
        default=None, metadata=_help("label value of unlabelled pixels")
    )
    sparse: bool = field(
        default=False,
        metadata=_help("sparse labels: 0 = not annotated, 1 = background, 2.. = classes"),
    )
    classes: int | None = field(
        default=None, metadata=_help("classes incl. background (auto: from the labels)")
    )
    mixed_precision: bool = field(default=True, metadata=_help("autocast on CUDA"))
    seed: int = field(default=0, metadata=_help("random seed"))
    sync_bn: bool = field(
        default=True, metadata=_help("synchronise batch norms across GPUs (SyncBatchNorm)")
    )
    workers: int = field(
        default=0, metadata=_help("DataLoader processes preparing patches (0: in the loop)")
    )

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            _int(name, getattr(self, name), 1)
        _int("workers", self.workers, 0)
        _flag("sync_bn", self.sync_bn)
        _int("freeze_encoder_epochs", self.freeze_encoder_epochs, 0)
        _int("seed", self.seed, 0)
        _int("steps_per_epoch", self.steps_per_epoch, 1, none_ok=True)
        _int("early_stopping", self.early_stopping, 0, none_ok=True)
        _int("classes", self.classes, 1, none_ok=True)
        _int("patch_size", self.patch_size, 2 * NETWORK_MULTIPLE)
        if self.patch_size % NETWORK_MULTIPLE:
            low = self.patch_size // NETWORK_MULTIPLE * NETWORK_MULTIPLE
            raise ValueError(
                f"patch_size must be a multiple of {NETWORK_MULTIPLE} (the network halves it "
                f"5 times), got {self.patch_size}; use {low} or {low + NETWORK_MULTIPLE}"
            )
        _number("learning_rate", self.learning_rate, 0.0, 1.0, open_low=True, none_ok=True)
        _number("encoder_learning_rate_factor", self.encoder_learning_rate_factor, 0.0, 10.0)
        _number("weight_decay", self.weight_decay, 0.0, 1.0)
        _number("val_fraction", self.val_fraction, 0.0, 0.9)
        _number("foreground_fraction", self.foreground_fraction, 0.0, 1.0)
        _number("max_minutes", self.max_minutes, 0.0, math.inf, open_low=True, none_ok=True)
        for name in ("augment", "mixed_precision", "sparse"):
            _flag(name, getattr(self, name))
        self._check_ignore()
        if self.early_stopping == 0:
            object.__setattr__(self, "early_stopping", None)

    def _check_ignore(self) -> None:
        value = self.ignore_index
        if value is not None and (isinstance(value, bool) or not _is_integer(value)):
            raise TypeError(f"ignore_index must be an int or None, got {value!r}")
        if value is not None:
            object.__setattr__(self, "ignore_index", int(value))
        if self.sparse and value not in (None, SPARSE_IGNORE):
            raise ValueError(
                f"sparse labels mark unlabelled pixels with 0 themselves; ignore_index "
                f"({value}) cannot be given as well"
            )

    @property
    def label_ignore(self) -> int | None:
        """The label value left out of the loss once labels are converted (sparse: 255)."""
        return SPARSE_IGNORE if self.sparse else self.ignore_index

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_integer(value: Any) -> bool:
    try:
        return int(value) == value and not isinstance(value, float)
    except (TypeError, ValueError):
        return False


SEGMENT_DEFAULTS = MappingProxyType(SegmentSettings().as_dict())
"""The defaults of :class:`SegmentSettings` as a read-only mapping (for display)."""

TRAIN_DEFAULTS = MappingProxyType(TrainSettings().as_dict())
"""The defaults of :class:`TrainSettings` as a read-only mapping (for display)."""

LEARNING_RATES = MappingProxyType({"pretrained": 3e-4, "random": 1e-3})
"""Automatic learning rate: fine-tuning trained weights takes smaller steps than training a
randomly initialised network (on the bundled liver sample, 80 steps from random weights
reached held-out IoU 0.79 at 1e-3 against 0.59 at 3e-4)."""


TRAIN_LIMITS: dict = {
    "min_steps_per_epoch": 16,
    "max_warmup_steps": 50,  # warmup: 5 % of the planned steps, at most this
    "max_steps_per_epoch": 1000,
    "max_auto_classes": 16,  # more label values than this needs classes= given explicitly
    "max_val_slices": 64,  # validation scores at most this many slices (evenly spread)
    "val_tile": 1024,  # validation slices larger than this are tiled
}
"""Bounds the training engine applies to its automatic choices (not user settings)."""

CT_WINDOW = (-160.0, 240.0)
"""Hounsfield window (soft tissue, abdomen) used for int16 CT under ``auto`` normalisation."""

PERCENTILES = (1.0, 99.8)
"""Lower/upper percentiles used for microscopy-style normalisation."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def models_dir() -> Path:
    """Folder where the plugin looks for and stores models.

    ``$NAPARI_RES101UNET_MODELS`` when set, else the user's data folder
    (``~/.local/share/napari-res101unet/models`` on Linux).
    """
    env = os.environ.get("NAPARI_RES101UNET_MODELS")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-res101unet", appauthor=False)) / "models"
