"""The Segment dock widget: Res101_UNet on an image layer, in a separate engine process.

Layout and wiring only: the settings become a :class:`~napari_res101unet.config.
SegmentSettings`, the job is prepared and applied by :mod:`napari_res101unet.viewer`,
and the network runs in the engine process (:mod:`napari_res101unet.engine`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    create_widget,
)

from .. import viewer as api
from ..config import BLENDINGS, INSTANCE_METHODS, SegmentSettings
from ..engine import protocol as P
from . import base
from .base import LOAD_FROM_FILE
from .review_panel import RefinePanel

if TYPE_CHECKING:
    import napari


PIXEL_TIP = (
    "In-plane pixel size of the image, in the model's unit (mm for medical scans). 0: the "
    "layer's scale when the file gave one (PNG/JPEG give none). The image is resampled to "
    "the model's spacing when they differ by more than 10 %."
)


class SegmentWidget(base.EngineWidget):
    """Pick an image layer and a model, click Run, get a Labels layer."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._last: api.SegmentOutcome | None = None  # kept for re-thresholding
        self._last_slice: int | None = None
        super().__init__(viewer, engine="segment", context="Segment")
        base.follow_session_models(self._model)

    def build(self) -> None:
        d = SegmentSettings()
        self._image = create_widget(annotation="napari.layers.Image", label="Image")
        self._model = ComboBox(label="Model", choices=base.model_choices)
        self._model_previous = self._model.value
        auto_tip = "auto: planned from the device's free memory and the image size"
        self._tile = base.optional_int("Tile size", "auto", 8192, 32, auto_tip)
        self._overlap = FloatSpinBox(label="Overlap", value=d.overlap, min=0.0, max=0.9, step=0.05)
        self._batch = base.optional_int("Batch size", "auto", 512, 1, auto_tip)
        self._tta = CheckBox(text="Test-time augmentation (flips; 4x slower)", value=d.tta)
        self._blending = ComboBox(label="Blending", choices=list(BLENDINGS), value=d.blending)
        self._blending.tooltip = (
            "How overlapping tiles are merged: gaussian weights the tile centres (no seams), "
            "constant averages them"
        )
        self._mixed = CheckBox(
            text="Mixed precision on the GPU (faster, less memory)", value=d.mixed_precision
        )
        self._mixed.tooltip = "Autocast to half precision on CUDA devices; the CPU ignores it"
        self._current_slice = CheckBox(text="Current slice only (3D)", value=False)
        self._show_probs = CheckBox(text="Add a probability layer", value=False)
        self._show_unc = CheckBox(text="Show uncertainty (review list)", value=False)
        self._show_unc.tooltip = "Add an uncertainty layer and list the slices/regions to check"
        self._objects = CheckBox(text="Separate objects (one id per object)", value=d.instances)
        self._objects.tooltip = (
            "A Labels layer '<image> objects' with one id per gland, nucleus or cell; "
            "multi-class models: objects per class"
        )
        self._method = ComboBox(
            label="Objects by", choices=list(INSTANCE_METHODS), value=d.instance_method
        )
        self._method.tooltip = (
            "auto: the model's boundary head when it has one, else the distance-transform "
            "watershed (splits touching objects); components: touching objects stay one"
        )
        self._min_size = base.optional_int(
            "Smallest object", "learned", 10**9, 1,
            "Objects of fewer pixels are dropped; learned: the size the model recorded "
            "from its training objects (0 when none); 1 keeps every object",
        )  # fmt: skip
        self._per_slice = CheckBox(text="Objects per slice (3D)", value=d.per_slice)
        self._per_slice.tooltip = "3D stacks: objects in each 2D slice instead of in 3D"
        self._fill_holes = CheckBox(text="Fill holes in objects", value=d.fill_holes)
        self._object_form = Container(labels=True, widgets=[self._method, self._min_size])
        self._refine = RefinePanel(self)
        self._threshold = FloatSlider(
            label="Threshold", value=d.threshold, min=0.05, max=0.95, step=0.05
        )
        self._pixel_size = FloatSpinBox(
            label="Pixel size", value=0.0, min=0.0, max=1e6, step=0.01, tooltip=PIXEL_TIP
        )
        self._threshold.tooltip = (
            "Foreground probability cut for binary models; re-applied "
            "to the last result without re-running the network"
        )
        form = Container(
            labels=True,
            widgets=[
                self._image,
                self._model,
                self._device,
                self._tile,
                self._overlap,
                self._batch,
                self._blending,
                self._threshold,
                self._pixel_size,
            ],
        )
        self.extend(
            [
                form,
                self._tta,
                self._mixed,
                self._current_slice,
                self._objects,
                self._object_form,
                self._per_slice,
                self._fill_holes,
                self._show_probs,
                self._show_unc,
                self.buttons(),
                self._refine,
                self._progress,
                self._status,
            ]
        )
        self.native.layout().addStretch(1)
        base.compact_combos(self._image, self._model, self._device)
        self._model.changed.connect(self._on_model_changed)
        self._threshold.changed.connect(self._rethreshold)
        self._objects.changed.connect(self._show_object_controls)
        self._image.changed.connect(self._show_object_controls)
        self._show_object_controls()

    def _show_object_controls(self, _value: Any = None) -> None:
        """The object controls only when objects are asked for; per slice only for 3D."""
        on = bool(self._objects.value)
        self._object_form.visible = self._fill_holes.visible = on
        layer = self._image.value
        stack = layer is not None and len(api.spatial_shape(layer)) == 3
        self._per_slice.visible = on and stack

    def _on_model_changed(self, value: Any) -> None:
        if value == LOAD_FROM_FILE:
            base.handle_load_from_file(self._model, self._model_previous, self.native)
        self._model_previous = self._model.value

    def settings(self) -> SegmentSettings:
        """The settings the controls describe (validated)."""
        return SegmentSettings(
            tile_size=int(self._tile.value) or None,
            overlap=float(self._overlap.value),
            batch_size=int(self._batch.value) or None,
            device=self._device.value,
            tta=bool(self._tta.value),
            threshold=float(self._threshold.value),
            blending=str(self._blending.value),
            mixed_precision=bool(self._mixed.value),
            instances=bool(self._objects.value),
            instance_method=str(self._method.value),
            per_slice=bool(self._per_slice.value),
            min_object_size=int(self._min_size.value) or None,
            fill_holes=bool(self._fill_holes.value),
        )

    def run(self) -> None:
        """Start segmenting the chosen image layer (returns at once; work runs elsewhere)."""
        if self._runner.worker is not None:
            return
        model = self._model.value
        if self._run_lazy(model):
            return
        try:
            request = api.segment_request(
                self._viewer,
                self._image.value,
                None if model == LOAD_FROM_FILE else model,
                self.settings(),
                current_slice=bool(self._current_slice.value),
                uncertainty=bool(self._show_unc.value),
                pixel_size=float(self._pixel_size.value) or None,
            )
        except (ValueError, TypeError, FileNotFoundError) as exc:
            self.fail(exc)
            return
        self._status.value = f"Segmenting {request.image.name}..."
        self._runner.start(P.SEGMENT, request.payload(), lambda job: self._on_done(job, request))

    def _run_lazy(self, model: Any) -> bool:
        """A dask / zarr / multiscale layer: segmented block by block from its store into
        a zarr-backed Labels layer (viewer/segment_lazy.py); False for other layers."""
        from ..viewer.segment_lazy import apply_lazy_result, is_lazy_layer, lazy_request

        layer = self._image.value
        if layer is None or not is_lazy_layer(layer) or self._current_slice.value:
            return False
        try:
            chosen = None if model == LOAD_FROM_FILE else model
            request = lazy_request(self._viewer, layer, chosen, self.settings())
        except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
            self.fail(exc)
            return True
        self._status.value = f"Segmenting {layer.name} block by block..."

        def done(job: Any) -> None:
            if job is None or job.cancelled:
                self._status.value = "Cancelled: no layer was changed."
                return
            apply_lazy_result(self._viewer, request, job.result)
            self._status.value = f"{job.result['model_name']} on {layer.name}: " + (
                f"{job.result['summary']}; labels in {job.result['path']}"
            )

        self._runner.start(P.SEGMENT_BLOCKS, request.payload(), done, unit="blocks")
        return True

    def on_job_message(self, msg: dict) -> None:
        if msg.get("kind") == P.PROGRESS:
            self.show_progress(msg["done"], msg["total"])
            self._status.value = f"Segmenting: {msg['done']}/{msg['total']} {self._runner.unit}"
        elif msg.get("kind") == P.EVENT:
            self._refine.on_event(msg)

    def _on_done(self, job: Any, request: api.SegmentRequest) -> None:
        if job is None or job.cancelled:
            self._status.value = "Cancelled: no layer was changed."
            return
        outcome = api.apply_segment_result(
            self._viewer, request, job.result, show_probabilities=bool(self._show_probs.value)
        )
        self._last, self._last_slice = outcome, request.slice_index
        self._refine.segmented(outcome, request.slice_index)
        self._threshold.enabled = outcome.probabilities is not None
        self._status.value = outcome.summary

    def _set_running(self, running: bool) -> None:
        super()._set_running(running)
        self._refine._button.enabled = not running

    def _rethreshold(self, value: float) -> None:
        if self._last is not None and api.rethreshold(
            self._viewer, self._last, value, self._last_slice
        ):
            self._status.value = f"Threshold {value:.2f} applied to {self._last.labels.name}"
