"""Everything :func:`~napari_res101unet.train` checks and builds before the first step."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import torch

from .config import NETWORK_MULTIPLE, TRAIN_LIMITS
from .model import ModelSpec, build_model, default_class_names, model_spec
from .pairs import (
    CheckedPair,
    check_label_bound,
    infer_in_channels,
    prepare,
    resolve_classes,
)
from .splits import cap_slices, split


def _int(name: str, value: Any, minimum: int, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if none_ok else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}, got {value!r}")


def _number(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")


def check_settings(s: dict[str, Any]) -> dict[str, Any]:
    """Check the keyword arguments of ``train`` (a dict); returns them JSON-ready."""
    for name in ("epochs", "batch_size"):
        _int(name, s[name], 1)
    _int("freeze_encoder_epochs", s["freeze_encoder_epochs"], 0)
    _int("seed", s["seed"], 0)
    _int("steps_per_epoch", s["steps_per_epoch"], 1, none_ok=True)
    _int("early_stopping", s["early_stopping"], 0, none_ok=True)
    _int("classes", s["classes"], 1, none_ok=True)
    _int("patch_size", s["patch_size"], 2 * NETWORK_MULTIPLE)
    if s["patch_size"] % NETWORK_MULTIPLE:
        low = s["patch_size"] // NETWORK_MULTIPLE * NETWORK_MULTIPLE
        raise ValueError(
            f"patch_size must be a multiple of {NETWORK_MULTIPLE} (the network halves it 5 "
            f"times), got {s['patch_size']}; use {low} or {low + NETWORK_MULTIPLE}"
        )
    if s["learning_rate"] is not None:
        _number("learning_rate", s["learning_rate"], 0.0, 1.0, open_low=True)
    _number("encoder_learning_rate_factor", s["encoder_learning_rate_factor"], 0.0, 10.0)
    _number("weight_decay", s["weight_decay"], 0.0, 1.0)
    _number("val_fraction", s["val_fraction"], 0.0, 0.9)
    _number("foreground_fraction", s["foreground_fraction"], 0.0, 1.0)
    if s["max_minutes"] is not None:
        _number("max_minutes", s["max_minutes"], 0.0, math.inf, open_low=True)
    for name in ("augment", "mixed_precision"):
        if not isinstance(s[name], bool):
            raise TypeError(f"{name} must be True or False, got {s[name]!r}")
    for name in ("callback", "should_stop"):
        if s[name] is not None and not callable(s[name]):
            raise TypeError(f"{name} must be a callable or None, got {type(s[name]).__name__}")
    if s["ignore_index"] is not None and not isinstance(s["ignore_index"], bool):
        s["ignore_index"] = int(s["ignore_index"])
    if s["early_stopping"] == 0:
        s["early_stopping"] = None
    return s


def start_model(
    s: dict[str, Any], checked: list[CheckedPair], resume: Path | None
) -> tuple[torch.nn.Module, bool, str]:
    """The model to train, whether its encoder starts trained, and where it came from.

    ``s`` are the checked settings (``model``, ``classes``, ``class_names``,
    ``encoder_weights``, ``ignore_index``, ``seed``); ``s["classes"]`` is set to the class
    count in use. The given model is copied, never changed.
    """
    from .checkpoint import load_model

    if s["encoder_weights"] is not None and (resume is not None or s["model"] is not None):
        raise ValueError(
            "encoder_weights applies to a new model only; the given model (or the run "
            "being resumed) already has trained weights"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s["seed"])
        if resume is not None:
            net, source = load_model(resume), f"resume:{resume.name}"
        elif s["model"] is None:
            return _new_model(s, checked)
        elif isinstance(s["model"], (str, os.PathLike)):
            net, source = load_model(Path(s["model"])), f"model:{Path(s['model']).name}"
        elif isinstance(s["model"], torch.nn.Module):
            spec = model_spec(s["model"])
            net, source = copy.deepcopy(s["model"]).cpu(), f"model:{spec.name}"
        else:
            raise TypeError(
                f"model must be None, a checkpoint path or a Res101_UNet, got "
                f"{type(s['model']).__name__}"
            )
        spec = model_spec(net)
        wanted = s["classes"]
        resolve_classes(checked, wanted or spec.n_labels, s["ignore_index"])
        if wanted is not None and wanted != spec.classes:
            replace_head(net, wanted, s["class_names"])
    s["classes"] = net.spec.classes
    if resume is not None:  # keep the interrupted run's freezing schedule
        stored = (net.spec.training or {}).get("settings", {})
        for key in ("freeze_encoder_epochs", "encoder_learning_rate_factor", "learning_rate"):
            if key != "learning_rate" or s[key] is None:
                s[key] = stored.get(key, s[key])
    return net, True, source


def _new_model(s: dict[str, Any], checked: list[CheckedPair]) -> tuple[Any, bool, str]:
    classes = resolve_classes(checked, s["classes"], s["ignore_index"])
    net = build_model(
        infer_in_channels(checked),
        classes,
        s["encoder_weights"],
        class_names=s["class_names"],
        tile_size=s["patch_size"],
    )
    s["classes"] = classes
    pretrained = net.spec.encoder_weights != "random"
    return net, pretrained, net.spec.encoder_weights


def replace_head(net: torch.nn.Module, classes: int, class_names: list[str] | None) -> None:
    """Give ``net`` a new, randomly initialised output layer for ``classes`` classes."""
    from segmentation_models_pytorch.base import SegmentationHead

    spec = net.spec
    net.segmentation_head = SegmentationHead(spec.decoder_channels[-1], classes, kernel_size=3)
    names = default_class_names(classes, class_names)
    net.spec = ModelSpec.from_dict({**spec.to_dict(), "classes": classes, "class_names": names})


def prepare_data(net, s: dict[str, Any], checked, checked_val):
    """``(train items, validation items, split rule)`` with the model's channels and
    normalisation."""
    spec = model_spec(net)
    kw = {
        "ignore_index": s["ignore_index"],
        "in_channels": spec.in_channels,
        "normalization": spec.normalization,
    }
    resolve_classes(checked, spec.n_labels, s["ignore_index"])
    items = prepare(checked, **kw)
    if checked_val is not None:
        check_label_bound(checked_val, spec.n_labels, "val_pairs")
        val = prepare(checked_val, what="val_pairs", **kw)
        return items, cap_slices(val), f"val_pairs ({len(val)} images)"
    return split(items, s["val_fraction"], s["seed"])


def steps_per_epoch(pixels: int, s: dict[str, Any]) -> int:
    """``s["steps_per_epoch"]``, or about one pass over ``pixels`` (within the limits)."""
    if s["steps_per_epoch"] is not None:
        return s["steps_per_epoch"]
    per_step = s["batch_size"] * s["patch_size"] ** 2
    steps = math.ceil(pixels / per_step)
    return min(
        max(steps, TRAIN_LIMITS["min_steps_per_epoch"]), TRAIN_LIMITS["max_steps_per_epoch"]
    )
