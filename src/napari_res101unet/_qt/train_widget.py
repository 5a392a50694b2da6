"""The Train dock widget: fine-tune Res101_UNet from image + labels layers.

It checks the pairs at once (shapes, empty labels, classes) with the engine's numpy-only
checks, then trains in the engine process (never in napari's), streams progress and the
per-epoch curve, and hands the best model to the Segment widget's model picker.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
    create_widget,
)

from .._engine_client import get_engine
from .._session import SESSION_MODELS
from ..config import TRAIN_DEFAULTS, models_dir
from ..pairs import check_pairs
from . import _common
from ._common import LOAD_FROM_FILE
from .plot import TrainingPlot

if TYPE_CHECKING:
    import napari

RANDOM, IMAGENET, ENCODER_FILE = "__random__", "__imagenet__", "__encoder_file__"
SPARSE_IGNORE = 255


def start_choices(widget: Any = None) -> list[tuple[str, Any]]:
    """Where training starts: a model to fine-tune (transfer), ImageNet, a file, random."""
    fine_tune = [
        (f"fine-tune {label}", value)
        for label, value in _common.model_choices(with_untrained=False)
        if value != LOAD_FROM_FILE
    ]
    return [
        *fine_tune,
        ("random initialisation", RANDOM),
        ("ImageNet encoder (downloaded once by smp)", IMAGENET),
        ("local ResNet-101 encoder weights file...", ENCODER_FILE),
        ("fine-tune a model file...", LOAD_FROM_FILE),
    ]


class TrainWidget(Container):
    """Choose image/labels pairs and settings, click Train, watch the curve."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self._viewer = viewer
        self._engine = get_engine("train")
        self._pairs: list[tuple[str, str]] = []
        self._encoder_file: str | None = None
        self._build()
        self._runner = _common.EngineRunner(
            self._engine, "Train", self._status, self._on_message, self._set_running
        )
        _common.follow_session_models(self._start)
        _common.warm_engine(self._engine, self._on_engine_ready)

    # ---- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        d = TRAIN_DEFAULTS
        self._image = create_widget(annotation="napari.layers.Image", label="Image")
        self._labels = create_widget(annotation="napari.layers.Labels", label="Labels")
        self._add = PushButton(text="Add pair")
        self._remove = PushButton(text="Remove selected")
        self._pair_list = Select(label="Pairs", choices=self._pair_choices)
        self._pair_list.tooltip = "Training pairs; when empty, the Image and Labels above"
        self._start = ComboBox(label="Start from", choices=start_choices)
        self._start.value = RANDOM if not SESSION_MODELS else self._start.value
        self._start_previous = self._start.value
        self._classes = _common.optional_int(
            "Classes", "from labels", 255, 1, "Classes including background; 0 counts them"
        )
        self._sparse = CheckBox(
            text="Sparse labels: 0 = not annotated, 1 = background, 2.. = classes", value=False
        )
        self._epochs = SpinBox(label="Epochs", value=d["epochs"], min=1, max=10000)
        self._steps = _common.optional_int(
            "Steps per epoch", "auto", 100000, 1, "auto: about one pass over the training pixels"
        )
        self._patch = SpinBox(label="Patch size", value=d["patch_size"], min=64, max=2048, step=32)
        self._batch = SpinBox(label="Batch size", value=d["batch_size"], min=1, max=256)
        self._lr = FloatSpinBox(label="Learning rate", value=0.0, min=0.0, max=1.0, step=1e-4)
        self._lr.native.setDecimals(6)
        self._lr.native.setSpecialValueText("auto")
        self._lr.tooltip = "auto: 1e-3 from random weights, 3e-4 when fine-tuning a model"
        self._freeze = SpinBox(
            label="Freeze encoder", value=d["freeze_encoder_epochs"], min=0, max=1000
        )
        self._freeze.tooltip = "Epochs with a pretrained encoder frozen before fine-tuning it"
        self._val = FloatSpinBox(
            label="Validation", value=d["val_fraction"], min=0.0, max=0.5, step=0.05
        )
        self._minutes = FloatSpinBox(
            label="Time budget (min)", value=0.0, min=0.0, max=100000, step=5.0
        )
        self._minutes.native.setSpecialValueText("none")
        self._augment = CheckBox(
            text="Augmentation (flips, rotations, scale, intensity)", value=d["augment"]
        )
        self._device = ComboBox(
            label="Device", choices=lambda _w=None: _common.device_choices(self._engine.info)
        )
        self._output = FileEdit(
            label="Save as", mode="w", filter="*.safetensors", value=self._default_output()
        )
        self._train = PushButton(text="Train")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._progress = ProgressBar(label="Progress", value=0, min=0, max=1, visible=False)
        self._plot = TrainingPlot()
        self._status = _common.status_label()
        form = Container(
            labels=True,
            widgets=[
                self._image,
                self._labels,
                self._pair_list,
                self._start,
                self._classes,
                self._epochs,
                self._steps,
                self._patch,
                self._batch,
                self._lr,
                self._freeze,
                self._val,
                self._minutes,
                self._device,
                self._output,
            ],
        )
        self.extend(
            [
                Container(widgets=[self._add, self._remove], layout="horizontal", labels=False),
                form,
                self._sparse,
                self._augment,
                Container(widgets=[self._train, self._cancel], layout="horizontal", labels=False),
                self._progress,
            ]
        )
        self.native.layout().addWidget(self._plot)
        self.native.layout().addWidget(self._status.native)
        self.native.layout().addStretch(1)
        self._pair_list.native.setMaximumHeight(80)
        _common.compact_combos(self._image, self._labels, self._start, self._device)
        self._add.changed.connect(self._add_pair)
        self._remove.changed.connect(self._remove_pairs)
        self._train.changed.connect(self.run)
        self._cancel.changed.connect(self.cancel)
        self._start.changed.connect(self._on_start_changed)
        self._image.changed.connect(lambda *_: self._suggest_output())
        self._suggest_output()

    def _pair_choices(self, widget: Any = None) -> list[tuple[str, tuple[str, str]]]:
        return [(f"{img}  +  {lab}", (img, lab)) for img, lab in self._pairs]

    def _add_pair(self) -> None:
        image, labels = self._image.value, self._labels.value
        if image is None or labels is None:
            _common.notify_error(self._status, "Train", "pick an image and a labels layer first")
            return
        pair = (image.name, labels.name)
        if pair not in self._pairs:
            self._pairs.append(pair)
        self._pair_list.reset_choices()
        self._status.value = f"{len(self._pairs)} training pair(s)."

    def _remove_pairs(self) -> None:
        chosen = set(self._pair_list.value or [])
        self._pairs = [p for p in self._pairs if p not in chosen]
        self._pair_list.reset_choices()

    def _default_output(self, name: str = "model") -> Path:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"
        return models_dir() / f"res101unet-{safe}-{stamp}.safetensors"

    def _suggest_output(self) -> None:
        current = Path(str(self._output.value))
        if current.parent == models_dir() and current.name.startswith("res101unet-"):
            image = self._image.value
            self._output.value = self._default_output(image.name if image else "model")

    def _on_engine_ready(self, info: dict) -> None:
        _common.refresh_device_choices(self._device, info)

    def _on_start_changed(self, value: Any) -> None:
        if value == LOAD_FROM_FILE:
            _common.handle_load_from_file(self._start, self._start_previous, self.native)
            if self._start.value == "untrained":
                self._start.value = RANDOM
        elif value == ENCODER_FILE:
            path = _common.ask_model_file(self.native)
            if path is None:
                self._start.value = self._start_previous
            self._encoder_file = path
        self._start_previous = self._start.value

    # ---- checks and request -------------------------------------------------------------
    def _layer_pairs(self) -> list[tuple[Any, Any]]:
        names = self._pairs or (
            [(self._image.value.name, self._labels.value.name)]
            if self._image.value is not None and self._labels.value is not None
            else []
        )
        if not names:
            raise ValueError(
                "no training data: pick an image and its labels layer "
                "(open both, or paint labels on a new Labels layer)"
            )
        out = []
        for image_name, labels_name in names:
            if image_name not in self._viewer.layers or labels_name not in self._viewer.layers:
                raise ValueError(f"layer '{image_name}' or '{labels_name}' no longer exists")
            out.append((self._viewer.layers[image_name], self._viewer.layers[labels_name]))
        return out

    def request(self) -> dict[str, Any]:
        """Arrays and options for the engine, checked now (raises ValueError/TypeError)."""
        arrays, names = [], []
        layers = self._layer_pairs()
        for image, labels in layers:
            data = _common.layer_array(image)  # RGB: channels last, one axis more
            lab = _common.layer_array(labels)
            if self._sparse.value:
                lab = _sparse_to_ignore(lab, labels.name)
            arrays.append((data, lab))
            names.append(f"{image.name} + {labels.name}")
        ignore = SPARSE_IGNORE if self._sparse.value else None
        try:
            check_pairs(arrays, ignore_index=ignore)
        except (ValueError, TypeError) as exc:
            raise type(exc)(_name_pairs(str(exc), names)) from None
        if not any(np.any((lab > 0) & (lab != ignore)) for _, lab in arrays):
            raise ValueError(
                f"the labels of {', '.join(names)} are empty (no labelled object "
                "with a value above 0): paint or open labels first"
            )
        classes = int(self._classes.value) or None
        if classes is not None:
            _check_classes(arrays, classes, ignore, names)
        return {
            "pairs": arrays,
            "options": self._options(ignore, classes),
            "spacing": [float(s) for s in layers[0][0].scale[-2:]],
        }

    def _options(self, ignore: int | None, classes: int | None) -> dict[str, Any]:
        start = self._start.value
        options: dict[str, Any] = {
            "epochs": self._epochs.value,
            "patch_size": self._patch.value,
            "batch_size": self._batch.value,
            "learning_rate": float(self._lr.value) or None,
            "freeze_encoder_epochs": self._freeze.value,
            "val_fraction": float(self._val.value),
            "augment": bool(self._augment.value),
            "device": self._device.value,
            "steps_per_epoch": int(self._steps.value) or None,
            "max_minutes": float(self._minutes.value) or None,
            "ignore_index": ignore,
            "classes": classes,
            "output": str(self._output.value),
        }
        if start == IMAGENET:
            options["encoder_weights"] = "imagenet"
        elif start == ENCODER_FILE and self._encoder_file:
            options["encoder_weights"] = self._encoder_file
        elif start not in (RANDOM, ENCODER_FILE, LOAD_FROM_FILE, None):
            options["start"] = start
        return options

    # ---- running ------------------------------------------------------------------------
    def run(self) -> None:
        """Check the pairs, then start training in the engine process."""
        if self._runner.worker is not None:
            return
        try:
            request = self.request()
        except (ValueError, TypeError) as exc:
            _common.notify_error(self._status, "Train", exc)
            return
        request["options"]["spacing"] = request.pop("spacing")
        self._plot.clear()
        self._status.value = "Starting training..."
        self._runner.start("train", request, self._on_done)

    def cancel(self) -> None:
        """Stop within one step; the best model so far is kept."""
        self._runner.cancel()
        self._status.value = "Cancelling (the best model so far is kept)..."

    def _on_message(self, msg: dict) -> None:
        kind = msg.get("kind")
        if kind == "status":
            self._status.value = msg["text"]
        elif kind == "engine":
            self._on_engine_ready(msg["info"])
        elif kind == "event":
            self._on_event(msg["event"])

    def _on_event(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "step":
            self._progress.visible = True
            self._progress.max = max(1, int(event["steps_total"]))
            self._progress.value = min(int(event["step"]), self._progress.max)
            self._status.value = (
                f"Training: step {event['step']}/{event['steps_total']}, loss {event['loss']:.4f}"
            )
        elif kind == "epoch":
            self._plot.add_epoch(event.get("train_loss"), event.get("val_iou"))
            iou = event.get("val_iou")
            scores = (
                f", val IoU {iou:.3f}, Dice {event['val_dice']:.3f}" if iou is not None else ""
            )
            self._status.value = (
                f"Epoch {event['epoch']}/{event['epochs']}: loss "
                f"{event['train_loss']:.4f}{scores} ({event['seconds']:.0f} s)"
            )

    def _set_running(self, running: bool) -> None:
        self._train.enabled = not running
        self._cancel.enabled = running

    def _on_done(self, job: Any) -> None:
        if job is None:
            self._status.value = "Cancelled before training started."
            return
        result = job.result if not job.cancelled else None
        if not result or not result.get("path"):
            self._status.value = "Stopped before the first epoch: no model was saved."
            return
        path = Path(result["path"])
        SESSION_MODELS.add(path, label=path.stem, origin="trained")
        iou = result.get("best_val_iou")
        score = (
            f"best val IoU {iou:.3f} at epoch {result['best_epoch']}"
            if iou is not None
            else f"{result.get('epochs_done')} epochs (no validation)"
        )
        self._status.value = (
            f"Done ({result['reason']}): {score}. Saved {path.name} in "
            f"{path.parent}; Segment's model list now offers it."
        )
        self._output.value = self._default_output(
            self._image.value.name if self._image.value else "model"
        )


def _sparse_to_ignore(labels: np.ndarray, name: str) -> np.ndarray:
    """0 = not annotated → ignored; 1 = background → 0; k → k - 1."""
    lab = np.asarray(labels)
    top = int(lab.max(initial=0))
    if top >= SPARSE_IGNORE:
        raise ValueError(
            f"labels '{name}' use value {top}; sparse mode allows up to {SPARSE_IGNORE - 1}"
        )
    if top < 1:
        raise ValueError(
            f"labels '{name}' are empty: paint at least background (1) and one class (2)"
        )
    out = lab.astype(np.uint8) - 1
    out[lab == 0] = SPARSE_IGNORE
    return out


def _check_classes(arrays, classes: int, ignore, names) -> None:
    for (_, lab), name in zip(arrays, names):
        values = np.unique(lab[lab != ignore] if ignore is not None else lab)
        if values.size and values.max() >= classes:
            raise ValueError(
                f"{name}: label value {int(values.max())} is beyond the "
                f"{classes} classes chosen (0..{classes - 1})"
            )


def _name_pairs(message: str, names: list[str]) -> str:
    """Replace ``pairs[i]`` in an engine message by the layer names of pair i."""
    return re.sub(
        r"pairs\[(\d+)\]",
        lambda m: f"'{names[int(m.group(1))]}'" if int(m.group(1)) < len(names) else m.group(0),
        message,
    )
