"""What training runs are asked to do: a training run, and one turn of correct-and-retrain."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .checks import _choice, _flag, _help, _int, _is_integer, _number
from .constants import (
    CONFIRM_MODES,
    FEW_PASSES,
    INSTANCE_CLASS_NAMES,
    INSTANCE_HEADS,
    INSTANCE_TRAINING,
    LOSSES,
    NETWORK_MULTIPLE,
    REFINE_EPOCHS_WITH_BUDGET,
    SPARSE_IGNORE,
)


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
    loss: str = field(default="dice_ce", metadata=_help(f"training loss: {', '.join(LOSSES)}"))
    val_fraction: float = field(
        default=0.2, metadata=_help("share held out for validation when no validation pairs")
    )
    steps_per_epoch: int | None = field(
        default=None, metadata=_help("steps per epoch (auto: one pass over the pixels)")
    )
    foreground_fraction: float = field(
        default=0.5, metadata=_help("share of patches centred on an object")
    )
    augment: bool = field(
        default=True,
        metadata=_help(
            "flips, rotations, scale, intensity, at a strength that grows with the planned "
            f"run (none while it samples the training pixels fewer than {FEW_PASSES:g} times)"
        ),
    )
    mirror: bool = field(
        default=True,
        metadata=_help(
            "mirror images among the augmentation's flips (without: quarter turns only, "
            "which keep left and right apart, for CT or MR slices in one orientation)"
        ),
    )
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
    instances: bool = field(
        default=False,
        metadata=_help(
            "learn to separate touching objects: instance maps (one id per object) or "
            "binary masks (objects: connected components) become instance targets (see "
            "instance_head), and the model records its head"
        ),
    )
    instance_head: str = field(
        default="distance",
        metadata=_help(
            "with instances: distance (background + bins of the distance to the object's "
            "boundary) or boundary (background / interior / contour); distance is the "
            "default by measurement on GlaS (see the guide 'Train to separate objects')"
        ),
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
        _choice("loss", self.loss, LOSSES)
        for name in ("augment", "mirror", "mixed_precision", "sparse", "instances"):
            _flag(name, getattr(self, name))
        self._check_ignore()
        self._check_instances()
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

    def _check_instances(self) -> None:
        _choice("instance_head", self.instance_head, INSTANCE_HEADS)
        if not self.instances:
            return
        if self.sparse:
            raise ValueError(
                "instances=True needs whole objects in the labels; sparse labels (a few "
                "strokes) cannot tell an object's contour: use one or the other"
            )
        wanted = self.instance_classes
        if self.classes not in (None, wanted):
            raise ValueError(
                f"instances=True with a {self.instance_head} head trains {wanted} classes; "
                f"classes={self.classes} cannot be given as well (leave it None)"
            )

    @property
    def instance_classes(self) -> int:
        """The classes of the instance head (``instance_head``), background included."""
        if self.instance_head == "distance":
            return 1 + int(INSTANCE_TRAINING["distance_bins"])
        return len(INSTANCE_CLASS_NAMES)

    @property
    def label_ignore(self) -> int | None:
        """The label value left out of the loss once labels are converted (sparse: 255)."""
        return SPARSE_IGNORE if self.sparse else self.ignore_index

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RefineSettings:
    """One turn of correct-and-retrain (:func:`~napari_res101unet.refine`): a short
    fine-tune from the current weights at a small learning rate, no frozen encoder, no
    validation split (the corrections are too few to split)."""

    minutes: float | None = field(
        default=1.0, metadata=_help("training budget (wall clock); None: epochs")
    )
    epochs: int | None = field(
        default=None, metadata=_help("epochs when no budget is given (auto: 10)")
    )
    confirm: str = field(
        default="auto",
        metadata=_help(
            "what counts as checked: slice (every painted slice whole), region (painted "
            "pixels and a margin), auto (slice for stacks, region for 2D)"
        ),
    )
    margin: int = field(
        default=32, metadata=_help("pixels around the painted ones that count as checked (2D)")
    )
    learning_rate: float = field(default=1e-4, metadata=_help("learning rate"))
    patch_size: int = field(default=256, metadata=_help("patch side (multiple of 32)"))
    batch_size: int = field(default=4, metadata=_help("patches per step"))
    steps_per_epoch: int | None = field(
        default=None, metadata=_help("steps per epoch (auto: one pass over the pixels)")
    )
    augment: bool = field(default=True, metadata=_help("flips, rotations, scale, intensity"))
    mirror: bool = field(
        default=True, metadata=_help("mirror images among the augmentation's flips")
    )
    seed: int = field(default=0, metadata=_help("random seed"))

    def __post_init__(self) -> None:
        _number("minutes", self.minutes, 0.0, math.inf, open_low=True, none_ok=True)
        _int("epochs", self.epochs, 1, none_ok=True)
        _choice("confirm", self.confirm, CONFIRM_MODES)
        _int("margin", self.margin, 0)
        _flag("augment", self.augment)
        _flag("mirror", self.mirror)
        self.train_settings()  # the rest is checked as TrainSettings

    def train_settings(self) -> TrainSettings:
        """The :class:`TrainSettings` of this refinement."""
        return TrainSettings(
            epochs=self.epochs or (REFINE_EPOCHS_WITH_BUDGET if self.minutes else 10),
            patch_size=self.patch_size,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            freeze_encoder_epochs=0,
            val_fraction=0.0,
            steps_per_epoch=self.steps_per_epoch,
            augment=self.augment,
            mirror=self.mirror,
            early_stopping=None,
            max_minutes=self.minutes,
            ignore_index=SPARSE_IGNORE,
            seed=self.seed,
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TRAIN_DEFAULTS = MappingProxyType(TrainSettings().as_dict())
"""The defaults of :class:`TrainSettings` as a read-only mapping (for display)."""
