"""Correct and retrain: fine-tune the current model on the user's corrections, re-segment.

:func:`refine` is one turn of the loop: the user segmented an image, painted corrections
on the labels (tracked by :mod:`napari_res101unet.viewer.corrections`), and now the model
trains from its current weights on what the user checked, together with earlier pairs,
for a short budget; then the image is segmented again where the user did not look, and
every painted pixel is kept.

What counts as checked (the *confirmed* area, ``confirm``): on a stack, each slice with a
painted pixel, whole (its unpainted pixels count as confirmed); on a 2D image, the painted
pixels and a margin around them (the rest of the image is left out of the loss), or the
whole image with ``confirm="slice"`` (e.g. when a user pasted or reviewed all of it).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RefineSettings, SegmentSettings, settings_with
from ..model import model_spec
from .corrected import (
    check_shapes,
    confirmed_area,
    edited_mask,
    edited_slices,
    training_target,
)


@dataclass
class RefineResult:
    """What :func:`refine` made.

    Attributes
    ----------
    model : torch.nn.Module
        The refined model (eval mode); ``model.spec.training["refinements"]`` lists every
        refinement of its line (corrections, when, from which model).
    labels : ndarray
        The labels of the image's spatial shape: the user's inside the confirmed area
        (every painted pixel included), the refined model's elsewhere.
    confirmed : bool ndarray
        The confirmed area trained on (labels' shape).
    path : Path or None
        Where the model was saved (None when ``output=False``).
    record : dict
        The refinement's entry in the history.
    """

    model: torch.nn.Module
    labels: np.ndarray
    confirmed: np.ndarray
    path: Path | None
    record: dict
    seconds: float


def refine(
    model: torch.nn.Module | str | os.PathLike,
    image: Any,
    labels: Any,
    settings: RefineSettings | None = None,
    *,
    edited: Any = None,
    pairs: Sequence[tuple[Any, Any]] | None = None,
    output: str | os.PathLike | bool | None = None,
    device: str | torch.device = "auto",
    callback: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    segment_settings: SegmentSettings | None = None,
    **fields: Any,
) -> RefineResult:
    """Fine-tune ``model`` on corrected labels and re-segment what was not corrected.

    Parameters
    ----------
    model : Module or path
        The current model (copied: it is not changed).
    image : (Y, X[, C]) or (Z, Y, X[, C]) array
        The image that was segmented (channels last).
    labels : (Y, X) or (Z, Y, X) int array
        Its labels after the user's corrections.
    settings : RefineSettings, optional
        The turn's budget (``minutes``; None trains ``epochs``), what counts as checked
        (``confirm``, ``margin``: see the module) and the training values (a small
        learning rate, no frozen encoder, no validation split); every field is documented
        in :class:`~napari_res101unet.config.RefineSettings`. Its fields may also be given
        as keyword arguments, which win.
    edited : bool array, sequence of int, or Corrections
        What the user painted: a mask of the labels' shape, the indices of the corrected
        slices of a stack, or a :class:`~napari_res101unet.viewer.corrections.Corrections`.
    pairs : sequence of (image, labels), optional
        Earlier training pairs, trained on together with the corrections.
    output : path, False or None
        Where the refined model goes; None: a new file in the model folder
        (``res101unet-<name>-refined-<date-time>``). An existing file is never replaced.
        False saves nothing.
    device : str
        Where to train and re-segment.
    callback, should_stop
        As in :func:`~napari_res101unet.train`.
    segment_settings : SegmentSettings, optional
        How to re-segment (default: the defaults, on ``device``).
    **fields
        :class:`~napari_res101unet.config.RefineSettings` fields.

    Raises
    ------
    ValueError
        With no edits, or labels/edits of another shape than the image.
    """
    start = time.perf_counter()
    s = settings_with(RefineSettings, settings, fields)
    lab, channel_axis = check_shapes(image, labels)
    mask, edits = edited_mask(edited, lab.shape)
    confirmed = confirmed_area(mask, s.confirm, s.margin)
    path = _output_path(output, model)
    target = training_target(lab, confirmed)
    from .run import TrainRun, fit

    base = model if isinstance(model, torch.nn.Module) else _load(model)
    names = [*(f"pairs[{i}]" for i in range(len(pairs or []))), "the corrected labels"]
    run = TrainRun(
        [*(pairs or []), (image, target)], pair_names=names, model=base, device=device,
        spacing=model_spec(base).spacing, callback=callback, should_stop=should_stop,
    )  # fmt: skip
    refined = fit(run, s.train_settings())
    if should_stop is not None and should_stop():
        from ..errors import Cancelled

        raise Cancelled("refine cancelled: no model was saved")
    record = _record(base, mask, edits, confirmed, s.minutes, len(pairs or []), refined)
    seg = segment_settings or SegmentSettings(device=str(device))
    out = _resegment(refined, image, lab, confirmed, channel_axis, seg)
    if path is not None:
        from ..checkpoint import save_model

        path = save_model(refined, path)
    return RefineResult(refined, out, confirmed, path, record, time.perf_counter() - start)


def _load(path: Any) -> torch.nn.Module:
    from ..registry import open_model

    return open_model(path)


def _output_path(output: Any, model: Any) -> Path | None:
    if output is False:
        return None
    if output is None or output is True:
        name = Path(str(model)).name if not isinstance(model, torch.nn.Module) else "model"
        stem = name.removesuffix(".safetensors").removeprefix("res101unet-")
        return _new_path(f"{stem.split('-refined')[0]}-refined")
    path = Path(output).expanduser()
    path = path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")
    if path.exists():
        raise ValueError(f"{path} exists: refine never replaces a model; choose another output")
    return path


def _new_path(name: str) -> Path:
    """A file name no model has in the model folder: ``res101unet-<name>-<date-time>``."""
    import re

    from ..config import models_dir

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"
    stem = f"res101unet-{safe}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, i = models_dir() / f"{stem}.safetensors", 2
    while path.exists():
        path, i = path.with_name(f"{stem}-{i}.safetensors"), i + 1
    return path


def _record(base, mask, edits, confirmed, minutes, n_pairs, refined) -> dict:
    """Add this refinement to ``refined.spec.training["refinements"]`` and return it."""
    before = model_spec(base).training or {}
    done = refined.spec.training or {}
    record = {
        "when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "from": model_spec(base).name,
        "edits": int(edits),
        "corrected_pixels": int(mask.sum()),
        "confirmed_pixels": int(confirmed.sum()),
        "slices": edited_slices(mask),
        "earlier_pairs": int(n_pairs),
        "minutes": minutes,
        "steps": done.get("step"),
    }
    history = [*before.get("refinements", []), record]
    refined.spec.training = {**done, "refinements": history}
    return record


def _resegment(model, image, labels, confirmed, channel_axis, settings) -> np.ndarray:
    """Segment what is not confirmed with the refined model; keep the user's labels."""
    from ..inference.segment import run_segmentation

    out = labels.copy()
    if labels.ndim == 3:
        todo = np.flatnonzero(~confirmed.reshape(len(confirmed), -1).all(axis=1))
        if len(todo):
            part = np.asarray(image)[todo]
            new = run_segmentation(part, model, settings, channel_axis=channel_axis).labels
            out[todo] = np.where(confirmed[todo], labels[todo], new)
        return out
    if confirmed.all():
        return out
    new = run_segmentation(image, model, settings, channel_axis=channel_axis).labels
    return np.where(confirmed, labels, new).astype(labels.dtype)
