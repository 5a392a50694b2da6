"""What a training run reports (:class:`TrainingEvent`) and where it writes checkpoints.

Layout for ``output="runs/liver"`` (``.safetensors`` optional; an existing folder ``F``
means ``F/model``)::

    runs/liver.safetensors             best epoch (highest validation IoU): the model to use
    runs/liver.last.safetensors        the end of the latest epoch (resume from this one),
                                       with the AdamW moments of that epoch (``optimizer.*``
                                       tensors + JSON groups): one file, one atomic commit

The two model files are ordinary checkpoints (:func:`~napari_res101unet.load_model`, which
skips the ``optimizer.*`` tensors); ``spec.training`` holds the settings, the per-epoch
history and where to resume. Runs of earlier versions kept the optimizer state in
``runs/liver.last.optim.safetensors`` (:attr:`CheckpointPaths.optimizer`); they still
resume, and a pair left half-written is detected. Nothing is saved before the first epoch
completes, and an existing model is replaced only when asked (``overwrite=True``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIX = ".safetensors"
LAST = ".last"
OPTIM = ".optim"


@dataclass
class TrainingEvent:
    """What :func:`train` reports to its ``callback``.

    ``kind`` is ``"step"`` (``step``, ``steps_total``, ``loss``, ``lr``), ``"epoch"``
    (``epoch``, ``epochs``, ``train_loss``, ``val_iou``, ``val_dice``, ``seconds``, ``lr``;
    the val scores are None without validation), ``"checkpoint"`` (``path``, ``best``) or
    ``"done"`` (``reason``: ``completed``, ``early_stopping``, ``time_budget`` or
    ``cancelled``; ``best_epoch``, ``best_val_iou``, ``path`` of the best model, ``seconds``).
    """

    kind: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps_total: int = 0
    loss: float | None = None
    train_loss: float | None = None
    val_iou: float | None = None
    val_dice: float | None = None
    seconds: float = 0.0
    lr: float | None = None
    path: str | None = None
    best: bool = False
    reason: str | None = None
    best_epoch: int | None = None
    best_val_iou: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CheckpointPaths:
    """The three files of a training run."""

    best: Path
    last: Path
    optimizer: Path

    @classmethod
    def from_output(cls, output: str | os.PathLike) -> CheckpointPaths:
        """Paths for ``output`` (a file stem, a ``.safetensors`` file or an existing folder)."""
        if not isinstance(output, (str, os.PathLike)):
            raise TypeError(f"output must be a path or None, got {type(output).__name__}")
        path = Path(output).expanduser()
        if path.is_dir():
            path = path / "model"
        name = path.name.removesuffix(SUFFIX)
        if not name:
            raise ValueError(f"output {str(output)!r} has no file name")
        base = path.with_name(name)
        return cls(
            best=base.with_name(name + SUFFIX),
            last=base.with_name(name + LAST + SUFFIX),
            optimizer=base.with_name(name + LAST + OPTIM + SUFFIX),
        )

    @classmethod
    def from_last(cls, last: str | os.PathLike) -> CheckpointPaths:
        """Paths of the run whose last checkpoint is ``last`` (``X.last.safetensors``)."""
        path = Path(last).expanduser()
        name = path.name.removesuffix(SUFFIX)
        if not name.endswith(LAST):
            raise ValueError(
                f"resume must name a last checkpoint '<name>.last.safetensors', got "
                f"{path.name!r}; to fine-tune further from a model, pass it as model="
            )
        return cls.from_output(path.with_name(name.removesuffix(LAST)))
