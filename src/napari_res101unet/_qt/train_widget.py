"""The Train dock widget: fine-tune Res101_UNet from image + labels layers.

Layout and wiring only: the controls become a :class:`~napari_res101unet.config.
TrainSettings`; :mod:`napari_res101unet.viewer` checks the layer pairs with the training
data rules (shapes, empty labels, classes, sparse labels) before anything starts; the run
happens in the engine process; the curve and progress follow its events, and the best
model is handed to the Segment widget's model list.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    PushButton,
    Select,
    SpinBox,
    create_widget,
)

from .. import viewer as api
from ..config import FEW_PASSES, TrainSettings, models_dir
from ..engine import protocol as P
from ..viewer.session import SESSION_MODELS
from . import base
from .base import LOAD_FROM_FILE
from .plot import TrainingPlot

if TYPE_CHECKING:
    import napari

RANDOM, IMAGENET, ENCODER_FILE = "__random__", "__imagenet__", "__encoder_file__"


def start_choices(widget: Any = None) -> list[tuple[str, Any]]:
    """Where training starts: a model to fine-tune (transfer), ImageNet, a file, random."""
    fine_tune = [
        (f"fine-tune {label}", value)
        for label, value in base.model_choices(with_untrained=False)
        if value != LOAD_FROM_FILE
    ]
    return [
        *fine_tune,
        ("random initialisation", RANDOM),
        ("ImageNet encoder (downloaded once by smp)", IMAGENET),
        ("local ResNet-101 encoder weights file...", ENCODER_FILE),
        ("fine-tune a model file...", LOAD_FROM_FILE),
    ]


class TrainWidget(base.EngineWidget):
    """Choose image/labels pairs and settings, click Train, watch the curve."""

    run_text = "Train"
    all_gpus = True  # "all GPUs" when the engine reports several (training/multi_gpu.py)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._pairs: list[tuple[str, str]] = []
        self._encoder_file: str | None = None
        super().__init__(viewer, engine="train", context="Train")
        self._train = self._run
        base.follow_session_models(self._start)

    # ---- layout -------------------------------------------------------------------------
    def build(self) -> None:
        d = TrainSettings()
        self._image = create_widget(annotation="napari.layers.Image", label="Image")
        self._labels = create_widget(annotation="napari.layers.Labels", label="Labels")
        self._add = PushButton(text="Add pair")
        self._remove = PushButton(text="Remove selected")
        self._pair_list = Select(label="Pairs", choices=self._pair_choices)
        self._pair_list.tooltip = "Training pairs; when empty, the Image and Labels above"
        self._start = ComboBox(label="Start from", choices=start_choices)
        self._start.value = RANDOM if not SESSION_MODELS else self._start.value
        self._start_previous = self._start.value
        self._classes = base.optional_int(
            "Classes", "from labels", 255, 1, "Classes including background; 0 counts them"
        )
        self._sparse = CheckBox(
            text="Sparse labels: 0 = not annotated, 1 = background, 2.. = classes",
            value=d.sparse,
        )
        self._epochs = SpinBox(label="Epochs", value=d.epochs, min=1, max=10000)
        self._steps = base.optional_int(
            "Steps per epoch", "auto", 100000, 1, "auto: about one pass over the training pixels"
        )
        self._patch = SpinBox(label="Patch size", value=d.patch_size, min=64, max=2048, step=32)
        self._batch = SpinBox(label="Batch size", value=d.batch_size, min=1, max=256)
        self._lr = FloatSpinBox(label="Learning rate", value=0.0, min=0.0, max=1.0, step=1e-4)
        self._lr.native.setDecimals(6)
        self._lr.native.setSpecialValueText("auto")
        self._lr.tooltip = "auto: 1e-3 from random weights, 3e-4 when fine-tuning a model"
        self._freeze = SpinBox(
            label="Freeze encoder", value=d.freeze_encoder_epochs, min=0, max=1000
        )
        self._freeze.tooltip = "Epochs with a pretrained encoder frozen before fine-tuning it"
        self._val = FloatSpinBox(
            label="Validation", value=d.val_fraction, min=0.0, max=0.5, step=0.05
        )
        self._minutes = FloatSpinBox(
            label="Time budget (min)", value=0.0, min=0.0, max=100000, step=5.0
        )
        self._minutes.native.setSpecialValueText("none")
        self._augment = CheckBox(
            text="Augmentation (flips, rotations, scale, intensity)", value=d.augment
        )
        self._augment.tooltip = (
            "Flips, rotations, scale and intensity changes, at a strength that grows with "
            f"the planned run: none while it sees the painted pixels fewer than {FEW_PASSES:g} "
            "times (a network still learning its images only slows down with them), full for long "
            "runs and for a few images seen many times"
        )
        self._mirror = CheckBox(
            text="Mirror patches too (untick: turns only, left stays left)", value=d.mirror
        )
        self._mirror.tooltip = (
            "Augmentation may mirror patches. Unticked, patches are only turned by quarter "
            "turns, which keep left and right apart (slices in one orientation, where the "
            "liver and the spleen lie on their own sides)"
        )
        self._augment.changed.connect(lambda on: setattr(self._mirror, "enabled", bool(on)))
        self._instances = CheckBox(
            text="Separate touching objects (learn where they part)", value=d.instances
        )
        self._instances.tooltip = (
            "Labels are objects (one id each, or connected components of a mask): the "
            "model learns the distance to each object's boundary (instance_head)"
        )
        self._output = FileEdit(
            label="Save as", mode="w", filter="*.safetensors", value=api.unique_model_path()
        )
        self._plot = TrainingPlot()
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
                self._mirror,
                self._instances,
                self.buttons(),
                self._progress,
            ]
        )
        self.native.layout().addWidget(self._plot)
        self.native.layout().addWidget(self._status.native)
        self.native.layout().addStretch(1)
        self._pair_list.native.setMaximumHeight(80)
        base.compact_combos(self._image, self._labels, self._start, self._device)
        self._add.changed.connect(self._add_pair)
        self._remove.changed.connect(self._remove_pairs)
        self._start.changed.connect(self._on_start_changed)
        self._image.changed.connect(lambda *_: self._suggest_output())
        self._suggest_output()

    def _pair_choices(self, widget: Any = None) -> list[tuple[str, tuple[str, str]]]:
        return [(f"{img}  +  {lab}", (img, lab)) for img, lab in self._pairs]

    def _add_pair(self) -> None:
        image, labels = self._image.value, self._labels.value
        if image is None or labels is None:
            self.fail("pick an image and a labels layer first")
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

    def _suggest_output(self) -> None:
        current = Path(str(self._output.value))
        if current.parent == models_dir() and current.name.startswith("res101unet-"):
            image = self._image.value
            self._output.value = api.unique_model_path(image.name if image else "model")

    def _on_start_changed(self, value: Any) -> None:
        if value == LOAD_FROM_FILE:
            base.handle_load_from_file(self._start, self._start_previous, self.native)
            if self._start.value == "untrained":
                self._start.value = RANDOM
        elif value == ENCODER_FILE:
            path = base.ask_model_file(self.native)
            if path is None:
                self._start.value = self._start_previous
            self._encoder_file = path
        self._start_previous = self._start.value

    # ---- settings and request -----------------------------------------------------------
    def settings(self) -> TrainSettings:
        """The settings the controls describe (validated)."""
        return TrainSettings(
            epochs=self._epochs.value,
            patch_size=self._patch.value,
            batch_size=self._batch.value,
            learning_rate=float(self._lr.value) or None,
            freeze_encoder_epochs=self._freeze.value,
            val_fraction=float(self._val.value),
            augment=bool(self._augment.value),
            mirror=bool(self._mirror.value),
            steps_per_epoch=int(self._steps.value) or None,
            max_minutes=float(self._minutes.value) or None,
            sparse=bool(self._sparse.value),
            classes=int(self._classes.value) or None,
            instances=bool(self._instances.value),
        )

    def _layer_pairs(self) -> list[tuple[str, str]]:
        if self._pairs:
            return list(self._pairs)
        image, labels = self._image.value, self._labels.value
        return [(image.name, labels.name)] if image is not None and labels is not None else []

    def request(self) -> api.TrainRequest:
        """The checked job (raises ValueError/TypeError naming the pair)."""
        start = self._start.value
        weights = {IMAGENET: "imagenet", ENCODER_FILE: self._encoder_file}.get(start)
        model = None if start in (RANDOM, IMAGENET, ENCODER_FILE, LOAD_FROM_FILE) else start
        return api.train_request(
            self._viewer,
            self._layer_pairs(),
            self.settings(),
            output=str(self._output.value),
            device=self._device.value,
            start=model,
            encoder_weights=weights,
        )

    # ---- running ------------------------------------------------------------------------
    def run(self) -> None:
        """Check the pairs, then start training in the engine process."""
        if self._runner.worker is not None:
            return
        try:
            request = self.request()
        except (ValueError, TypeError, FileNotFoundError) as exc:
            self.fail(exc)
            return
        self._plot.clear()
        self._status.value = "Starting training..."
        self._runner.start(P.TRAIN, request.payload(), self._on_done)

    def cancel_text(self) -> str:
        return "Cancelling (the best model so far is kept)..."

    def on_job_message(self, msg: dict) -> None:
        if msg.get("kind") != P.EVENT:
            return
        event = msg["event"]
        if event.get("kind") == "step":
            self.show_progress(event["step"], event["steps_total"])
            self._status.value = (
                f"Training: step {event['step']}/{event['steps_total']}, loss {event['loss']:.4f}"
            )
        elif event.get("kind") == "epoch":
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
        self._run.enabled = not running
        self._cancel.enabled = running

    def _on_done(self, job: Any) -> None:
        if job is None:
            self._status.value = "Cancelled before training started."
            return
        result = job.result if not job.cancelled else None
        path = api.apply_train_result(result)
        if path is None:
            self._status.value = "Stopped before the first epoch: no model was saved."
            return
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
        image = self._image.value
        self._output.value = api.unique_model_path(image.name if image else "model")
