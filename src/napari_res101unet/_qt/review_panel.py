"""The correct-and-retrain part of the Segment widget: the review list and the
"Fine-tune on corrections" action.

After Segment (with "Show uncertainty"), the review list names the most uncertain slices
or regions; picking one jumps there. The user paints fixes on the labels layer (its paint
events are tracked, :mod:`napari_res101unet.viewer.corrections`), then clicks Fine-tune:
the engine trains the current model on the corrected slices/regions (with this session's
earlier corrections) for the chosen minutes and re-segments the rest; the refined labels
come back as a new layer that keeps every painted pixel, and the new model is selected.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from magicgui.widgets import ComboBox, Container, FloatSpinBox, PushButton

from .. import viewer as api
from ..config import RefineSettings
from ..engine import protocol as P
from ..registry import UNTRAINED
from .base import LOAD_FROM_FILE


class RefinePanel(Container):
    """Review list + minutes + the Fine-tune button, driving its Segment widget's runner."""

    def __init__(self, widget: Any) -> None:
        self._w = widget
        self._items: list = []
        self._by = "slice"
        self._index: int | None = None
        self.target: Any = None  # the labels layer the user corrects
        self.pairs: list = []  # this session's earlier corrections, trained on again
        self.refine_settings = RefineSettings()  # the turn's settings (minutes: the box's)
        self._review = ComboBox(label="Review first", choices=self._choices, visible=False)
        self._review.tooltip = "The most uncertain slices or regions: pick one to go there"
        minutes = self.refine_settings.minutes
        self._minutes = FloatSpinBox(label="Fine-tune minutes", value=minutes, min=0.1, max=120)
        self._minutes.tooltip = "Training budget of one fine-tuning turn"
        self._button = PushButton(text="Fine-tune on corrections")
        self._button.tooltip = (
            "Paint fixes on the labels layer, then train the model on the corrected "
            "slices/regions and re-segment the rest (painted pixels are kept)"
        )
        form = Container(labels=True, widgets=[self._review, self._minutes])
        super().__init__(widgets=[form, self._button], labels=False)
        self._button.changed.connect(self.start)
        self._review.changed.connect(self._jump)

    def _choices(self, _widget: Any = None) -> list[tuple[str, int]]:
        return [(item.describe(self._by), i) for i, item in enumerate(self._items)]

    def segmented(self, outcome: Any, slice_index: int | None) -> None:
        """A Segment run finished: its labels are what the user corrects next."""
        self.target = outcome.labels
        self._items = list(outcome.extra.get("review") or [])
        self._by, self._index = outcome.extra.get("review_by", "slice"), slice_index
        self._review.reset_choices()
        self._review.visible = bool(self._items)

    def _jump(self, value: Any) -> None:
        if value is None or not self._items or self.target not in self._w._viewer.layers:
            return
        api.jump_to(self._w._viewer, self.target, self._items[value], self._by, self._index)

    def _labels_layer(self) -> Any:
        layers = self._w._viewer.layers
        if self.target is not None and self.target in layers:
            return self.target
        active = layers.selection.active
        if active is not None and api.layer_kind(active) == "labels":
            return active
        raise ValueError("segment an image first, then paint the fixes on its labels layer")

    def start(self) -> None:
        """Start fine-tuning on the corrections (returns at once; work runs elsewhere)."""
        w = self._w
        if w._runner.worker is not None:
            return
        chosen = w._model.value
        try:
            layer = self._labels_layer()
            request = api.refine_request(
                w._viewer,
                layer,
                None if (layer.metadata.get(api.TAG) or {}).get("model") else _model(chosen),
                replace(self.refine_settings, minutes=float(self._minutes.value)),
                pairs=self.pairs,
                segment=w.settings(),
            )
        except (ValueError, TypeError, FileNotFoundError) as exc:
            w.fail(exc)
            return
        found = api.corrections(layer)
        edits = found.summary() if found is not None else f"{int(request.edited.sum())} pixels"
        w._status.value = f"Fine-tuning on {layer.name} ({edits})..."
        w._runner.start(P.REFINE, request.payload(), lambda job: self._done(job, request))

    def on_event(self, msg: dict) -> None:
        """A training event of the running refine job."""
        event = msg.get("event") or {}
        if event.get("kind") == "step":
            loss = event.get("loss")
            shown = f", loss {loss:.3f}" if isinstance(loss, (int, float)) else ""
            self._w._status.value = f"Fine-tuning on corrections: step {event['step']}{shown}"

    def _done(self, job: Any, request: api.RefineRequest) -> None:
        w = self._w
        if job is None or job.cancelled:
            w._status.value = "Cancelled: no layer was changed, no model saved."
            return
        outcome = api.apply_refine_result(w._viewer, request, job.result)
        self.pairs.append(request.correction_pair())
        self.target, self._items = outcome.labels, []
        self._review.visible = False
        w._viewer.layers.selection.active = outcome.labels
        if outcome.path is not None:
            w._model.reset_choices()
            w._model.value = str(outcome.path)
        w._status.value = outcome.summary


def _model(chosen: Any) -> Any:
    return UNTRAINED if chosen in (None, LOAD_FROM_FILE) else chosen
