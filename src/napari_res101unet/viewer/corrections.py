"""Corrections painted on a labels layer, tracked from napari's paint events (no Qt).

napari's Labels layer emits ``layer.events.paint(value=item)`` once per undoable edit
(a brush stroke, a fill, a polygon, ``data_setitem``). ``item`` is a list of history
atoms: a ``_MaskedPaintAtom`` (``slice_key``, ``mask`` or None for the whole box,
``old_values``, ``new_value``) from paint/fill/polygon, or an ``(indices, old, new)``
tuple from ``data_setitem``. :class:`Corrections` turns them into a boolean mask of the
pixels the user changed, which :func:`~napari_res101unet.training.refine.refine` trains
on: the painted slices of a stack (their other pixels count as confirmed), the painted
regions of a 2D image. An undo emits no paint event: the pixels stay marked, now holding
the model's values again, which then count as confirmed.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

_TRACKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Corrections:
    """The pixels painted on one labels layer.

    Attributes
    ----------
    mask : bool ndarray of the layer's shape
        True where the user changed a label.
    edits : int
        Paint events seen (strokes, fills, ``data_setitem`` calls).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.mask = np.zeros(shape, bool)
        self.edits = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return self.mask.shape

    @property
    def pixels(self) -> int:
        """How many pixels were painted."""
        return int(self.mask.sum())

    def __bool__(self) -> bool:
        return bool(self.mask.any())

    def edited_slices(self) -> list[int]:
        """The slices (first axis) of a stack with a painted pixel; [] for a 2D layer."""
        if self.mask.ndim < 3:
            return []
        return [int(z) for z in np.flatnonzero(self.mask.reshape(len(self.mask), -1).any(1))]

    def add(self, item: Any) -> None:
        """Record one paint event's ``value`` (a list of history atoms)."""
        atoms = item if isinstance(item, list) else [item]
        for atom in atoms:
            self._add_atom(atom)
        self.edits += 1

    def _add_atom(self, atom: Any) -> None:
        if hasattr(atom, "slice_key"):  # napari's _MaskedPaintAtom
            key = tuple(atom.slice_key)
            if atom.mask is None:
                self.mask[key] = True
            else:
                self.mask[key] |= np.asarray(atom.mask, bool)
            return
        indices = tuple(np.asarray(i) for i in atom[0])  # (indices, old, new)
        if len(indices) == self.mask.ndim and indices[0].size:
            self.mask[indices] = True

    def summary(self) -> str:
        """``"3 edits, 1,204 pixels on slices 2, 5"`` (or ``"no edits"``)."""
        if not self:
            return "no edits"
        where = ""
        if self.mask.ndim >= 3:
            where = " on slices " + ", ".join(str(z) for z in self.edited_slices())
        return f"{self.edits} edits, {self.pixels:,} pixels{where}"


def track_corrections(layer: Any) -> Corrections:
    """Start (or keep) recording the paint events of a labels ``layer``."""
    tracker = corrections(layer)
    if tracker is not None:
        return tracker
    fresh = layer not in _TRACKERS
    tracker = _TRACKERS[layer] = Corrections(tuple(layer.data.shape))
    if fresh:
        layer.events.paint.connect(lambda event=None: _record(layer, event))
    return tracker


def _record(layer: Any, event: Any) -> None:
    tracker = corrections(layer)
    if tracker is None:  # the layer's data was replaced by one of another shape
        tracker = _TRACKERS[layer] = Corrections(tuple(layer.data.shape))
    tracker.add(event.value)


def corrections(layer: Any) -> Corrections | None:
    """What was painted on ``layer`` since tracking started (None: not tracked)."""
    tracker = _TRACKERS.get(layer)
    if tracker is not None and tracker.shape != tuple(layer.data.shape):
        return None
    return tracker


def reset_corrections(layer: Any) -> Corrections:
    """Forget the recorded edits of ``layer`` (after they were used) and keep tracking."""
    tracker = _TRACKERS.get(layer)
    if tracker is None:
        return track_corrections(layer)
    tracker.mask = np.zeros(tuple(layer.data.shape), bool)
    tracker.edits = 0
    return tracker
