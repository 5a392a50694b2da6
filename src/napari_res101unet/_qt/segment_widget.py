"""The Segment dock widget: Res101_UNet on an image layer, in a separate engine process.

Thin by design: it collects settings, sends the layer's array to the engine process
(:mod:`napari_res101unet._engine_client`), shows progress, and puts labels into layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    ProgressBar,
    PushButton,
    create_widget,
)

from .._engine_client import get_engine
from ..config import SEGMENT_DEFAULTS
from . import _common
from ._common import LOAD_FROM_FILE

if TYPE_CHECKING:
    import napari

TAG = "napari_res101unet"


class SegmentWidget(Container):
    """Pick an image layer and a model, click Run, get a Labels layer."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self._viewer = viewer
        self._engine = get_engine("segment")
        self._last: dict[str, Any] | None = None  # probabilities of the last run
        self._build()
        self._runner = _common.EngineRunner(
            self._engine, "Segment", self._status, self._on_message, self._set_running
        )
        _common.follow_session_models(self._model)
        _common.warm_engine(self._engine, self._on_engine_ready)

    # ---- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        d = SEGMENT_DEFAULTS
        self._image = create_widget(annotation="napari.layers.Image", label="Image")
        self._model = ComboBox(label="Model", choices=_common.model_choices)
        self._model_previous = self._model.value
        self._device = ComboBox(
            label="Device", choices=lambda _w=None: _common.device_choices(self._engine.info)
        )
        auto_tip = "auto: planned from the device's free memory and the image size"
        self._tile = _common.optional_int("Tile size", "auto", 8192, 32, auto_tip)
        self._overlap = FloatSpinBox(
            label="Overlap", value=d["overlap"], min=0.0, max=0.9, step=0.05
        )
        self._batch = _common.optional_int("Batch size", "auto", 512, 1, auto_tip)
        self._tta = CheckBox(text="Test-time augmentation (flips; 4x slower)", value=d["tta"])
        self._current_slice = CheckBox(text="Current slice only (3D)", value=False)
        self._show_probs = CheckBox(text="Add a probability layer", value=False)
        self._threshold = FloatSlider(
            label="Threshold", value=d["threshold"], min=0.05, max=0.95, step=0.05
        )
        self._threshold.tooltip = (
            "Foreground probability cut for binary models; re-applied "
            "to the last result without re-running the network"
        )
        self._run = PushButton(text="Run")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._progress = ProgressBar(label="Progress", value=0, min=0, max=1, visible=False)
        self._status = _common.status_label()
        form = Container(
            labels=True,
            widgets=[
                self._image,
                self._model,
                self._device,
                self._tile,
                self._overlap,
                self._batch,
                self._threshold,
            ],
        )
        self.extend(
            [
                form,
                self._tta,
                self._current_slice,
                self._show_probs,
                Container(widgets=[self._run, self._cancel], layout="horizontal", labels=False),
                self._progress,
                self._status,
            ]
        )
        self.native.layout().addStretch(1)
        _common.compact_combos(self._image, self._model, self._device)
        self._run.changed.connect(self.run)
        self._cancel.changed.connect(self.cancel)
        self._model.changed.connect(self._on_model_changed)
        self._threshold.changed.connect(self._rethreshold)

    def _on_engine_ready(self, info: dict) -> None:
        _common.refresh_device_choices(self._device, info)

    def _on_model_changed(self, value: Any) -> None:
        if value == LOAD_FROM_FILE:
            _common.handle_load_from_file(self._model, self._model_previous, self.native)
        self._model_previous = self._model.value

    # ---- running ------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The engine options the controls describe."""
        return {
            "tile_size": int(self._tile.value) or None,
            "overlap": float(self._overlap.value),
            "batch_size": int(self._batch.value) or None,
            "device": self._device.value,
            "tta": bool(self._tta.value),
            "threshold": float(self._threshold.value),
            "return_probabilities": True,
        }

    def run(self) -> None:
        """Start segmenting the chosen image layer (returns at once; work runs elsewhere)."""
        if self._runner.worker is not None:
            return
        layer = self._image.value
        try:
            request = self._request(layer)
        except ValueError as exc:
            _common.notify_error(self._status, "Segment", exc)
            return
        self._status.value = f"Segmenting {layer.name}..."
        payload = {k: request[k] for k in ("image", "model", "options", "in_channels")}
        self._runner.start("segment", payload, lambda job: self._on_done(job, layer, request))

    def _request(self, layer: Any) -> dict[str, Any]:
        if layer is None:
            raise ValueError("no image layer: open an image (File > Open, or File > Open Sample)")
        model = self._model.value
        if model in (None, LOAD_FROM_FILE):
            raise ValueError("choose a model first")
        data = _common.layer_array(layer)
        rgb = bool(getattr(layer, "rgb", False))
        spatial = data.ndim - (1 if rgb else 0)
        if spatial not in (2, 3):
            raise ValueError(
                f"layer '{layer.name}' has {spatial} spatial dimensions; Segment takes 2D images "
                "and 3D stacks (split channels or time points into separate layers first)"
            )
        options = self.settings()
        options["channel_axis"] = -1 if rgb else None
        index = None
        if spatial == 3 and self._current_slice.value:
            index = self._current_index(layer, data.shape[0])
            data = data[index]
        return {
            "image": data,
            "model": model,
            "options": options,
            "slice": index,
            "in_channels": 3,
        }

    def _current_index(self, layer: Any, depth: int) -> int:
        point = layer.world_to_data(self._viewer.dims.point)
        return int(np.clip(round(float(point[0])), 0, depth - 1))

    def cancel(self) -> None:
        """Stop the running segmentation at its next batch of tiles."""
        self._runner.cancel()
        self._status.value = "Cancelling..."

    def _on_message(self, msg: dict) -> None:
        kind = msg.get("kind")
        if kind == "progress":
            self._progress.visible = True
            self._progress.max = max(1, int(msg["total"]))
            self._progress.value = int(msg["done"])
            self._status.value = f"Segmenting: {msg['done']}/{msg['total']} tiles"
        elif kind == "status":
            self._status.value = msg["text"]
        elif kind == "engine":
            self._on_engine_ready(msg["info"])

    def _set_running(self, running: bool) -> None:
        self._run.enabled = not running
        self._cancel.enabled = running
        if not running:
            self._progress.visible = False

    # ---- results ------------------------------------------------------------------------
    def _on_done(self, job: Any, layer: Any, request: dict[str, Any]) -> None:
        if job is None or job.cancelled:
            self._status.value = "Cancelled: no layer was changed."
            return
        result = job.result
        labels_layer = self._put_labels(layer, result["labels"], request["slice"])
        probs = result.get("probabilities")
        binary = probs is not None and probs.ndim == result["labels"].ndim
        self._threshold.enabled = binary
        self._last = {
            "layer": labels_layer,
            "probabilities": probs if binary else None,
            "slice": request["slice"],
        }
        if probs is not None and self._show_probs.value:
            self._put_probabilities(layer, probs, request["slice"], binary)
        self._status.value = f"{result['model_name']} on {layer.name}: {result['summary']}"

    def _own_layer(self, name: str, kind: str, image: Any) -> Any:
        """Our earlier output for ``image`` if it is still ours to replace (not painted)."""
        for candidate in self._viewer.layers:
            meta = candidate.metadata.get(TAG) or {}
            if (
                candidate._type_string == kind
                and meta.get("source") == image.name
                and not meta.get("edited")
                and candidate.name == name
            ):
                return candidate
        return None

    def _put_labels(self, image: Any, labels: np.ndarray, index: int | None) -> Any:
        name = f"{image.name} labels"
        target = self._own_layer(name, "labels", image)
        full_shape = image.data.shape[:-1] if image.rgb else image.data.shape
        if target is not None and target.data.shape == tuple(full_shape):
            if index is None:
                target.data = labels
            else:
                target.data[index] = labels
                target.refresh()
            return target
        if index is not None:
            volume = np.zeros(full_shape, labels.dtype)
            volume[index] = labels
            labels = volume
        layer = self._viewer.add_labels(
            labels,
            name=_free_name(self._viewer, name),
            metadata=_common.derived_metadata(image, TAG, {"source": image.name}),
            **_common.spatial_geometry(image),
        )
        layer.events.paint.connect(lambda event=None: _mark_edited(layer))
        return layer

    def _put_probabilities(self, image: Any, probs: np.ndarray, index, binary: bool) -> None:
        data = probs.astype(np.float32)
        if not binary:
            return  # multi-class maps are kept out of the viewer; labels carry the argmax
        name = f"{image.name} probability"
        target = self._own_layer(name, "image", image)
        if index is not None:
            full = (
                target.data if target is not None else np.zeros(image.data.shape[:3], np.float32)
            )
            full[index] = data
            data = full
        if target is not None and target.data.shape == data.shape:
            target.data = data
            return
        self._viewer.add_image(
            data,
            name=_free_name(self._viewer, name),
            colormap="magma",
            opacity=0.5,
            contrast_limits=(0.0, 1.0),
            blending="additive",
            metadata=_common.derived_metadata(image, TAG, {"source": image.name}),
            **_common.spatial_geometry(image),
        )

    def _rethreshold(self, value: float) -> None:
        last = self._last
        if not last or last["probabilities"] is None:
            return
        layer = last["layer"]
        if layer not in self._viewer.layers or (layer.metadata.get(TAG) or {}).get("edited"):
            return  # never overwrite what the user painted
        labels = (last["probabilities"] > value).astype(layer.data.dtype)
        if last["slice"] is None:
            layer.data = labels
        else:
            layer.data[last["slice"]] = labels
            layer.refresh()
        self._status.value = f"Threshold {value:.2f} applied to {layer.name}"


def _mark_edited(layer: Any) -> None:
    meta = dict(layer.metadata.get(TAG) or {})
    meta["edited"] = True
    layer.metadata[TAG] = meta


def _free_name(viewer: Any, name: str) -> str:
    names = {layer.name for layer in viewer.layers}
    if name not in names:
        return name
    i = 2
    while f"{name} [{i}]" in names:
        i += 1
    return f"{name} [{i}]"
