"""Fine-tune Res101_UNet on a few labelled images (no Qt; the Train widget calls this).

One epoch is ``steps_per_epoch`` AdamW steps on random patches, then a validation pass;
events go to ``callback`` and checkpoints to ``output`` (layout in
:mod:`napari_res101unet.training.state`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import TrainSettings, settings_with
from ..device import precision_name, resolve_device
from ..preprocess.intensity import intensity_record
from ..preprocess.pair_spacing import fit_spacing
from . import distributed as _dist
from .instance_pairs import head_class_names
from .patches import PatchSampler
from .start import make_plan, prepare_data, start_model
from .state import CheckpointPaths, TrainingEvent
from .trainer import Trainer

__all__ = ["TrainRun", "TrainingEvent", "fit", "train"]


@dataclass(frozen=True)
class TrainRun:
    """One training run besides its :class:`~napari_res101unet.config.TrainSettings`: the
    data, where the model starts, where it is written, and the hooks (see :func:`train`)."""

    pairs: Sequence[tuple[Any, Any]]
    val_pairs: Sequence[tuple[Any, Any]] | None = None
    pair_names: Sequence[str] | None = None
    model: torch.nn.Module | str | os.PathLike | None = None
    encoder_weights: str | os.PathLike | None = None
    class_names: list[str] | None = None
    spacing: Sequence[Any] | None = None
    output: str | os.PathLike | None = None
    overwrite: bool = False
    resume: str | os.PathLike | None = None
    device: str | torch.device = "auto"
    callback: Callable[[TrainingEvent], None] | None = None
    should_stop: Callable[[], bool] | None = None


def train(
    pairs: Sequence[tuple[Any, Any]],
    settings: TrainSettings | None = None,
    *,
    model: torch.nn.Module | str | os.PathLike | None = None,
    val_pairs: Sequence[tuple[Any, Any]] | None = None,
    class_names: list[str] | None = None,
    encoder_weights: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    spacing: Sequence[Any] | None = None,
    callback: Callable[[TrainingEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    pair_names: Sequence[str] | None = None,
    **fields: Any,
) -> torch.nn.Module:
    """Fine-tune Res101_UNet on labelled images and return the best model.

    Parameters
    ----------
    pairs : sequence of (image, labels)
        Arrays, or data left on disk (file paths, zarr arrays: read lazily, see
        :mod:`napari_res101unet.training.lazy_pairs`). ``image`` ``(Y, X)``, ``(Y, X, C)``,
        ``(Z, Y, X)`` or ``(Z, Y, X, C)`` (a trailing axis is channels when the image has
        one axis more than its labels); ``labels`` integer class indices of the spatial
        shape (0 background, k class k). Stacks are sampled slice by slice along Z.
    settings : TrainSettings, optional
        What the run is asked to do (epochs, patch and batch size, learning rate, loss,
        augmentation, time budget, sparse labels...: every field is documented in
        :class:`~napari_res101unet.config.TrainSettings`); the defaults when None. Its
        fields may also be given as keyword arguments (``train(pairs, epochs=5)``), which
        override ``settings``. ``learning_rate=None`` picks 1e-3 for a randomly initialised
        network and 3e-4 when fine-tuning trained weights; a pretrained encoder is frozen
        for ``freeze_encoder_epochs`` epochs, then trains at ``learning_rate *
        encoder_learning_rate_factor``; ``max_minutes`` cuts the current epoch short,
        validates and saves (the schedule then follows the budget, so losses depend on
        timing).
    model : Module, path or None
        Start from this model (copied; a new head is made when ``classes`` differs).
        None builds a new one with ``encoder_weights`` (None: random, ``"imagenet"``,
        or a local ResNet-101 file).
    val_pairs : sequence of (image, labels), optional
        Validation data; else held out by :func:`napari_res101unet.training.splits.split`
        (by image; by slice for one stack; a border band for one 2D image);
        ``val_fraction=0`` validates nothing (the last epoch is the best).
    class_names : list of str, optional
        Names of the classes, background first.
    output : path, optional
        Where checkpoints go: best ``<output>.safetensors`` and last
        ``<output>.last.safetensors`` (with the optimizer state, for resuming). Nothing is
        saved when no epoch completes.
    overwrite : bool
        Replace the model files of an earlier run at ``output``. False (default) refuses,
        before any work, an ``output`` whose files exist (a resumed run updates its own).
    resume : path, optional
        A ``*.last.safetensors`` to continue from (epoch count, optimizer, history); pass
        the same data. ``output`` defaults to that run's.
    device : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. Under ``torchrun`` (several
        processes, one per GPU) each rank runs this same call; ``batch_size`` is per rank.
    spacing : optional
        The pixel spacing of the pairs, one ``(y, x)`` (or ``(z, y, x)``) for all or one
        per pair (None where unknown, e.g. PNG/JPEG). The model records the median per
        axis (a fine-tuned model keeps its own), pairs of another spacing are resampled to
        it, and inference resamples images to it. The checkpoint also records the
        intensity percentiles of the training inputs (``spec.intensity``).
    callback : callable, optional
        Called with each :class:`TrainingEvent` (``step``, ``epoch``, ``checkpoint``,
        ``done``).
    should_stop : callable, optional
        Checked before every step and during validation; True stops within a step and
        returns the best model so far (checkpoints on disk stay loadable).
    pair_names : sequence of str, optional
        Display names of the pairs for error messages (e.g. napari layer names).
    **fields
        :class:`~napari_res101unet.config.TrainSettings` fields.

    Returns
    -------
    torch.nn.Module
        The best model (eval mode, on the training device); ``model.spec.training`` holds
        ``settings``, ``history`` (one dict per epoch), ``best_epoch``, ``best_val_iou``,
        ``epochs_done``, ``step`` and ``stopped``.

    Raises
    ------
    ValueError, TypeError
        For bad settings or data, before any training (messages name the pair and value).
    """
    s = settings_with(TrainSettings, settings, fields)
    for name, fn in (("callback", callback), ("should_stop", should_stop)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a callable or None, got {type(fn).__name__}")
    run = TrainRun(
        pairs, val_pairs, pair_names, model, encoder_weights, class_names, spacing, output,
        overwrite, resume, device, callback, should_stop,
    )  # fmt: skip
    return fit(run, s)


def fit(run: TrainRun, settings: TrainSettings) -> torch.nn.Module:
    """:func:`train` of a :class:`TrainRun` with its :class:`~napari_res101unet.config.
    TrainSettings` (what the CLI, the engine process and :func:`refine` call)."""
    if not isinstance(run, TrainRun):
        raise TypeError(f"run must be a TrainRun, got {type(run).__name__}")
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    resume_path = Path(run.resume).expanduser() if run.resume is not None else None
    paths = _paths(run.output, resume_path)
    check_output(paths, resume_path, run.overwrite)
    with _dist.session(resolve_device(run.device)) as (world, dev):
        return _fit(run, settings, resume_path, paths, world, dev)


def _fit(run: TrainRun, settings, resume_path, paths, world, dev) -> torch.nn.Module:
    from .lazy_pairs import check_any

    rules = {"ignore_index": settings.ignore_index, "sparse": settings.sparse}
    checked = check_any(run.pairs, names=run.pair_names, **rules)
    checked_val = None
    if run.val_pairs is not None:
        checked_val = check_any(run.val_pairs, what="val_pairs", **rules)
    class_names = run.class_names
    objects = checked  # the objects as labelled, for the smallest plausible size
    if settings.instances:  # labels -> the instance head's classes (instance_pairs.py)
        checked, checked_val, settings = _instance_targets(checked, checked_val, settings)
        class_names = head_class_names(settings.instance_head)
    start = start_model(
        settings, run.model, run.encoder_weights, class_names,
        checked + (checked_val or []), resume_path,
    )  # fmt: skip
    net = start.net
    if settings.instances:  # else a given model keeps its head (refine corrects its classes)
        net.spec.instance_head = settings.instance_head
    model_spacing = net.spec.spacing
    checked, pixel = fit_spacing(checked, run.spacing, model_spacing, settings.label_ignore)
    if settings.instances:  # measured on the objects, not on the head's classes
        objects = fit_spacing(objects, run.spacing, model_spacing, settings.label_ignore)[0]
    else:
        objects = checked
    train_items, val_items, rule = prepare_data(net, settings, checked, checked_val)
    net.spec.intensity = intensity_record([(it.data, it.slices) for it in train_items])
    sampler = sampler_class(train_items).from_settings(train_items, settings)
    precision = precision_name(dev, settings.mixed_precision)
    plan = make_plan(settings, start, sampler, val_items, rule, dev, precision, world.size)
    net.spec.tile_size = settings.patch_size
    net.spec.spacing = None if pixel is None else list(pixel)
    net.spec.min_object_size = _smallest_object(objects, settings, net.spec.min_object_size)
    trainer = Trainer(
        net,
        sampler,
        val_items,
        settings,
        plan,
        device=dev,
        paths=paths,
        callback=run.callback,
        should_stop=run.should_stop,
        world=world,
    )
    if resume_path is not None:
        trainer.restore(resume_path)
    return trainer.fit()


def _smallest_object(checked, settings, previous: int | None) -> int | None:
    """The smallest plausible object of the training labels (at the model's pixel size),
    for ``segment(..., instances=True)``; labels read from disk and sparse labels are not
    measured (the previous value stays)."""
    from .instance_targets import smallest_object_size
    from .lazy_pairs import is_lazy

    if settings.sparse or any(is_lazy(pair.labels) for pair in checked):
        return previous
    found = smallest_object_size([pair.labels for pair in checked], settings.ignore_index)
    return previous if found is None else found


def _instance_targets(checked, checked_val, settings: TrainSettings):
    """Instance targets of the training and validation pairs, and the settings with the
    class count they imply (a given model gets a new head when it has another count)."""
    from .instance_pairs import instance_pairs

    ignore, head = settings.ignore_index, settings.instance_head
    checked = instance_pairs(checked, ignore, head)
    if checked_val is not None:
        checked_val = instance_pairs(checked_val, ignore, head, "val_pairs")
    settings = dataclasses.replace(settings, classes=settings.instance_classes)
    return checked, checked_val, settings


def sampler_class(items) -> type:
    """PatchSampler for images in memory, LazySampler when one is read from disk."""
    from .lazy_pairs import LazySampler, is_lazy

    return LazySampler if any(is_lazy(it.labels) for it in items) else PatchSampler


def _paths(output, resume: Path | None) -> CheckpointPaths | None:
    """Where this run writes: ``output``, else the resumed run's files, else nowhere."""
    previous = CheckpointPaths.from_last(resume) if resume is not None else None
    if output is not None:
        return CheckpointPaths.from_output(output)
    return previous


def check_output(
    output: CheckpointPaths | str | os.PathLike | None,
    resume: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> None:
    """Refuse (ValueError naming the files), before any work, an output whose model files
    exist, unless ``overwrite`` or it is the run being resumed."""
    resume = Path(resume).expanduser() if resume is not None else None
    paths = output
    if not isinstance(output, CheckpointPaths):
        paths = _paths(output, resume)
    if paths is None or overwrite:
        return
    if resume is not None and CheckpointPaths.from_last(resume).best.resolve() == (
        paths.best.resolve()
    ):
        return  # a resumed run updates its own files
    found = [str(p) for p in (paths.best, paths.last, paths.optimizer) if p.exists()]
    if found:
        raise ValueError(
            "training would replace existing model files (choose another output, or pass "
            f"overwrite=True, CLI --overwrite): {', '.join(found)}"
        )
