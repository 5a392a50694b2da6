"""Everything :func:`~napari_res101unet.train` decides before the first step.

:func:`start_model` picks the network (new, given, or resumed) and the class count;
:func:`prepare_data` matches the pairs to it and holds out validation data;
:func:`make_plan` records the values the run decided (:class:`TrainPlan`). Settings are
never changed in place: a decided value is a field of the plan, or a
:func:`dataclasses.replace` of the settings.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import LEARNING_RATES, LOSSES, TRAIN_LIMITS, TrainSettings
from ..model import ModelSpec, build_model, default_class_names, model_spec
from ..preprocess.pairs import CheckedPair, check_label_bound, infer_in_channels, resolve_classes
from .instance_pairs import class_weights
from .lazy_pairs import prepare_any
from .recipe import warmup_steps as recipe_warmup
from .splits import cap_slices, split

SCHEDULE = (
    "linear warmup + cosine to 1% of learning_rate at the planned step (training.recipe: "
    "refitted to a time budget)"
)
_RESUMED = ("freeze_encoder_epochs", "encoder_learning_rate_factor", "learning_rate")


@dataclass(frozen=True)
class Start:
    """The network a run trains and where it came from."""

    net: torch.nn.Module
    pretrained: bool
    source: str
    classes: int
    stored: dict  # the settings record of a resumed run ({} otherwise)


@dataclass(frozen=True)
class TrainPlan:
    """Values a run decided from its settings, data and start (stored with the settings)."""

    classes: int
    learning_rate: float
    encoder_learning_rate_factor: float
    freeze_encoder_epochs: int
    steps_per_epoch: int
    warmup_steps: int
    start: str
    validation: str
    train_images: int
    train_slices: int
    val_images: int
    device: str
    precision: str
    world_size: int = 1
    loss: str = f"dice_ce: {LOSSES['dice_ce']}"  # the name, and what it computes
    class_weights: list[float] | None = None  # cross-entropy weight per class (instances)
    optimizer: str = "AdamW"
    schedule: str = SCHEDULE
    steps_per_pass: float | None = None  # steps (per rank) that sample the pixels once


def record(settings: TrainSettings, plan: TrainPlan) -> dict[str, Any]:
    """The JSON record of a run's settings (``spec.training["settings"]``): what was asked,
    with the decided values in place of the automatic ones."""
    return {**settings.as_dict(), **dataclasses.asdict(plan)}


def start_model(
    settings: TrainSettings,
    model: Any,
    encoder_weights: Any,
    class_names: list[str] | None,
    checked: list[CheckedPair],
    resume: Path | None,
) -> Start:
    """The model to train, whether its encoder starts trained, and where it came from.

    The given model is copied, never changed.
    """
    from ..checkpoint import load_model

    if encoder_weights is not None and (resume is not None or model is not None):
        raise ValueError(
            "encoder_weights applies to a new model only; the given model (or the run "
            "being resumed) already has trained weights"
        )
    ignore = settings.label_ignore
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        if resume is None and model is None:
            classes = resolve_classes(checked, settings.classes, ignore)
            net = build_model(
                infer_in_channels(checked),
                classes,
                encoder_weights,
                class_names=class_names,
                tile_size=settings.patch_size,
            )
            weights = net.spec.encoder_weights
            return Start(net, weights != "random", weights, classes, {})
        if resume is not None:
            net, source = load_model(resume), f"resume:{resume.name}"
        elif isinstance(model, (str, os.PathLike)):
            net, source = load_model(Path(model)), f"model:{Path(model).name}"
        elif isinstance(model, torch.nn.Module):
            net, source = copy.deepcopy(model).cpu(), f"model:{model_spec(model).name}"
        else:
            raise TypeError(
                f"model must be None, a checkpoint path or a Res101_UNet, got "
                f"{type(model).__name__}"
            )
        spec = model_spec(net)
        resolve_classes(checked, settings.classes or spec.n_labels, ignore)
        if settings.classes is not None and settings.classes != spec.classes:
            replace_head(net, settings.classes, class_names)
    stored = (net.spec.training or {}).get("settings", {}) if resume is not None else {}
    return Start(net, True, source, net.spec.classes, stored)


def replace_head(net: torch.nn.Module, classes: int, class_names: list[str] | None) -> None:
    """Give ``net`` a new, randomly initialised output layer for ``classes`` classes."""
    from segmentation_models_pytorch.base import SegmentationHead

    spec = net.spec
    net.segmentation_head = SegmentationHead(spec.decoder_channels[-1], classes, kernel_size=3)
    names = default_class_names(classes, class_names)
    net.spec = ModelSpec.from_dict({**spec.to_dict(), "classes": classes, "class_names": names})


def prepare_data(net, settings: TrainSettings, checked, checked_val):
    """``(train items, validation items, split rule)`` with the model's channels and
    normalisation."""
    spec = model_spec(net)
    kw = {
        "ignore_index": settings.label_ignore,
        "in_channels": spec.in_channels,
        "normalization": spec.normalization,
    }
    resolve_classes(checked, spec.n_labels, settings.label_ignore)
    items = prepare_any(checked, **kw)  # pairs on disk stay there (lazy_pairs.py)
    if checked_val is not None:
        check_label_bound(checked_val, spec.n_labels)
        val = prepare_any(checked_val, **kw)
        return items, cap_slices(val), f"val_pairs ({len(val)} images)"
    return split(items, settings.val_fraction, settings.seed)


def make_plan(
    settings: TrainSettings, start: Start, sampler, val_items, rule, dev, precision, world=1
):
    """The :class:`TrainPlan` of a run. A resumed run keeps its freezing schedule and, unless
    a learning rate is given, its learning rate. With ``world`` ranks an automatic epoch is
    still about one pass over the pixels (each rank does its share of the steps)."""
    stored = {k: start.stored[k] for k in _RESUMED if start.stored.get(k) is not None}
    auto_lr = LEARNING_RATES["pretrained" if start.pretrained else "random"]
    steps = steps_per_epoch(-(-sampler.pixels // world), settings)
    total = steps * settings.epochs
    return TrainPlan(
        classes=start.classes,
        learning_rate=settings.learning_rate or stored.get("learning_rate") or auto_lr,
        encoder_learning_rate_factor=stored.get(
            "encoder_learning_rate_factor",
            settings.encoder_learning_rate_factor if start.pretrained else 1.0,
        ),
        freeze_encoder_epochs=stored.get(
            "freeze_encoder_epochs", settings.freeze_encoder_epochs if start.pretrained else 0
        ),
        steps_per_epoch=steps,
        warmup_steps=recipe_warmup(total),  # before any refit to a time budget
        start=str(start.source),
        validation=rule,
        train_images=len(sampler.items),
        train_slices=sum(len(it.slices) for it in sampler.items),
        val_images=len(val_items),
        device=str(dev),
        precision=precision,
        world_size=world,
        loss=f"{settings.loss}: {LOSSES[settings.loss]}",
        class_weights=class_weights(sampler.items, start.classes) if settings.instances else None,
        steps_per_pass=round(steps_per_pass(sampler.pixels / world, settings), 3),
    )


def steps_per_epoch(pixels: int, settings: TrainSettings) -> int:
    """``settings.steps_per_epoch``, or about one pass over ``pixels`` (within the limits)."""
    if settings.steps_per_epoch is not None:
        return settings.steps_per_epoch
    steps = math.ceil(steps_per_pass(pixels, settings))
    return min(
        max(steps, TRAIN_LIMITS["min_steps_per_epoch"]), TRAIN_LIMITS["max_steps_per_epoch"]
    )


def steps_per_pass(pixels: float, settings: TrainSettings) -> float:
    """Steps whose patches add up to ``pixels`` once."""
    return pixels / (settings.batch_size * settings.patch_size**2)
