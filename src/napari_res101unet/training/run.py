"""Fine-tune Res101_UNet on a few labelled images (no Qt; the Train widget calls this).

One epoch is ``steps_per_epoch`` AdamW steps on random patches, then a validation pass;
events go to ``callback`` and checkpoints to ``output`` (layout in
:mod:`napari_res101unet.training.state`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import TrainSettings
from ..device import precision_name, resolve_device
from ..preprocess.intensity import intensity_record
from ..preprocess.pair_spacing import fit_spacing
from . import distributed as _dist
from .patches import PatchSampler
from .start import make_plan, prepare_data, start_model
from .state import CheckpointPaths, TrainingEvent
from .trainer import Trainer

D = TrainSettings()
__all__ = ["TrainingEvent", "train"]


def train(
    pairs: Sequence[tuple[Any, Any]],
    *,
    model: torch.nn.Module | str | os.PathLike | None = None,
    epochs: int = D.epochs,
    patch_size: int = D.patch_size,
    batch_size: int = D.batch_size,
    learning_rate: float | None = D.learning_rate,
    encoder_learning_rate_factor: float = D.encoder_learning_rate_factor,
    freeze_encoder_epochs: int = D.freeze_encoder_epochs,
    weight_decay: float = D.weight_decay,
    val_fraction: float = D.val_fraction,
    val_pairs: Sequence[tuple[Any, Any]] | None = None,
    ignore_index: int | None = D.ignore_index,
    sparse: bool = D.sparse,
    classes: int | None = D.classes,
    class_names: list[str] | None = None,
    encoder_weights: str | os.PathLike | None = None,
    foreground_fraction: float = D.foreground_fraction,
    augment: bool = D.augment,
    steps_per_epoch: int | None = D.steps_per_epoch,
    early_stopping: int | None = D.early_stopping,
    max_minutes: float | None = D.max_minutes,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    mixed_precision: bool = D.mixed_precision,
    seed: int = D.seed,
    spacing: Sequence[Any] | None = None,
    sync_bn: bool = D.sync_bn,
    workers: int = D.workers,
    callback: Callable[[TrainingEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    pair_names: Sequence[str] | None = None,
) -> torch.nn.Module:
    """Fine-tune Res101_UNet on labelled images and return the best model.

    Parameters
    ----------
    pairs : sequence of (image, labels)
        Arrays, or data left on disk (file paths, zarr arrays: read lazily, see
        :mod:`napari_res101unet.training.lazy_pairs`). ``image`` ``(Y, X)``, ``(Y, X, C)``,
        ``(Z, Y, X)`` or ``(Z, Y, X, C)`` (a trailing
        axis is channels when the image has one axis more than its labels); ``labels``
        integer class indices of the spatial shape (0 background, k class k). Stacks are
        sampled slice by slice along Z.
    model : Module, path or None
        Start from this model (copied; a new head is made when ``classes`` differs).
        None builds a new one with ``encoder_weights`` (None: random, ``"imagenet"``,
        or a local ResNet-101 file).
    epochs, patch_size, batch_size : see :class:`~napari_res101unet.config.TrainSettings`
    learning_rate : float, optional
        Of the decoder and head; None picks ``LEARNING_RATES``: 1e-3 for a randomly
        initialised network, 3e-4 when fine-tuning trained weights.
        ``patch_size`` must be a multiple of 32; smaller images are reflect-padded.
    encoder_learning_rate_factor, freeze_encoder_epochs : see TrainSettings
        A pretrained encoder is frozen (batch norms in eval mode) for the first
        ``freeze_encoder_epochs`` epochs, then trains at ``learning_rate * factor``.
        A randomly initialised encoder is never frozen and trains at ``learning_rate``.
    val_fraction, val_pairs
        Validation data: ``val_pairs`` when given; else held out by
        :func:`napari_res101unet.training.splits.split` (by image; by slice for one stack; a border
        band for one 2D image); 0 validates nothing (the last epoch is the best).
    ignore_index : int, optional
        Label value of unlabelled pixels (sparse annotation); outside the classes.
    sparse : bool
        Labels painted as strokes: 0 = not annotated, 1 = background, 2.. = classes
        (converted by :func:`~napari_res101unet.preprocess.pairs.sparse_to_ignore`).
    classes, class_names
        Output classes (background included); None infers them from the labels (or keeps
        the model's).
    foreground_fraction, augment, steps_per_epoch : see TrainSettings
    early_stopping : int or None
        Stop after this many epochs without a better validation IoU.
    max_minutes : float, optional
        Wall-clock budget; the current epoch is cut short, validated and saved. The cosine
        schedule follows the budget when it is shorter than the epochs (then the losses
        depend on timing and are no longer reproducible).
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
    sync_bn, workers : see TrainSettings
        Under ``torchrun`` (several processes, one per GPU: README "Training on several
        GPUs or machines") each rank runs this same call; ``batch_size`` is per rank.
        ``workers`` > 0 prepares patches in DataLoader processes (other random streams
        than ``workers=0``, which alone reproduces a run exactly).
    device, mixed_precision, seed, spacing
        Device name; autocast (+ GradScaler for float16) on CUDA; seed of the model's
        initialisation, the split and the patches (same seed, same losses on the CPU);
        ``spacing``: the pixel spacing of the pairs, one ``(y, x)`` (or ``(z, y, x)``) for
        all or one per pair (None where unknown, e.g. PNG/JPEG). The model records the
        median per axis (a fine-tuned model keeps its own), pairs of another spacing are
        resampled to it, and inference resamples images to it
        (:mod:`napari_res101unet.preprocess.pair_spacing`). The checkpoint also records the
        intensity percentiles of the training inputs (``spec.intensity``).
    callback : callable, optional
        Called with each :class:`TrainingEvent` (``step``, ``epoch``, ``checkpoint``,
        ``done``).
    should_stop : callable, optional
        Checked before every step and during validation; True stops within a step and
        returns the best model so far (checkpoints on disk stay loadable).
    pair_names : sequence of str, optional
        Display names of the pairs for error messages (e.g. napari layer names).

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
    settings = TrainSettings(
        epochs=epochs,
        patch_size=patch_size,
        batch_size=batch_size,
        learning_rate=learning_rate,
        encoder_learning_rate_factor=encoder_learning_rate_factor,
        freeze_encoder_epochs=freeze_encoder_epochs,
        weight_decay=weight_decay,
        val_fraction=val_fraction,
        steps_per_epoch=steps_per_epoch,
        foreground_fraction=foreground_fraction,
        augment=augment,
        early_stopping=early_stopping,
        max_minutes=max_minutes,
        ignore_index=ignore_index,
        sparse=sparse,
        classes=classes,
        mixed_precision=mixed_precision,
        seed=seed,
        sync_bn=sync_bn,
        workers=workers,
    )
    for name, fn in (("callback", callback), ("should_stop", should_stop)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a callable or None, got {type(fn).__name__}")
    return fit(
        pairs,
        settings,
        val_pairs=val_pairs,
        pair_names=pair_names,
        model=model,
        encoder_weights=encoder_weights,
        class_names=class_names,
        output=output,
        overwrite=overwrite,
        resume=resume,
        device=device,
        spacing=spacing,
        callback=callback,
        should_stop=should_stop,
    )


def fit(
    pairs: Sequence[tuple[Any, Any]],
    settings: TrainSettings,
    *,
    val_pairs: Sequence[tuple[Any, Any]] | None = None,
    pair_names: Sequence[str] | None = None,
    model: torch.nn.Module | str | os.PathLike | None = None,
    encoder_weights: str | os.PathLike | None = None,
    class_names: list[str] | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    spacing: Sequence[Any] | None = None,
    callback: Callable[[TrainingEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> torch.nn.Module:
    """:func:`train` with its settings as one :class:`~napari_res101unet.config.TrainSettings`
    (what the CLI and the engine process call); the other arguments as in :func:`train`."""
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    resume_path = Path(resume).expanduser() if resume is not None else None
    paths = _paths(output, resume_path)
    check_output(paths, resume_path, overwrite)
    with _dist.session(resolve_device(device)) as (world, dev):
        return _fit(
            pairs,
            settings,
            val_pairs,
            pair_names,
            model,
            encoder_weights,
            class_names,
            resume_path,
            paths,
            world,
            dev,
            spacing,
            callback,
            should_stop,
        )


def _fit(
    pairs,
    settings,
    val_pairs,
    pair_names,
    model,
    encoder_weights,
    class_names,
    resume_path,
    paths,
    world,
    dev,
    spacing,
    callback,
    should_stop,
) -> torch.nn.Module:
    from .lazy_pairs import check_any

    rules = {"ignore_index": settings.ignore_index, "sparse": settings.sparse}
    checked = check_any(pairs, names=pair_names, **rules)
    checked_val = None
    if val_pairs is not None:
        checked_val = check_any(val_pairs, what="val_pairs", **rules)
    start = start_model(
        settings, model, encoder_weights, class_names, checked + (checked_val or []), resume_path
    )
    net = start.net
    checked, pixel = fit_spacing(checked, spacing, net.spec.spacing, settings.label_ignore)
    train_items, val_items, rule = prepare_data(net, settings, checked, checked_val)
    net.spec.intensity = intensity_record([(it.data, it.slices) for it in train_items])
    sampler = sampler_class(train_items)(
        train_items,
        settings.patch_size,
        settings.batch_size,
        foreground_fraction=settings.foreground_fraction,
        augment=settings.augment,
    )
    precision = precision_name(dev, settings.mixed_precision)
    plan = make_plan(settings, start, sampler, val_items, rule, dev, precision, world.size)
    net.spec.tile_size = settings.patch_size
    net.spec.spacing = None if pixel is None else list(pixel)
    trainer = Trainer(
        net,
        sampler,
        val_items,
        settings,
        plan,
        device=dev,
        paths=paths,
        callback=callback,
        should_stop=should_stop,
        world=world,
    )
    if resume_path is not None:
        trainer.restore(resume_path)
    return trainer.fit()


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
