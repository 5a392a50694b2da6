"""Runs show in napari's activity dock and end in a notification (Qt, under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.progress import progress

from napari_res101unet._qt.activity import ActivityProgress, mirror
from napari_res101unet.engine import protocol as P

pytestmark = pytest.mark.qt


@pytest.fixture
def activity_log():
    """Every ActivityProgress created meanwhile, with the (done, total, text) it showed."""
    seen: dict = {}

    def on_changed(event):
        for bar in event.added:
            if isinstance(bar, ActivityProgress):
                _follow(bar, seen.setdefault(bar, []))

    progress._all_instances.events.changed.connect(on_changed)
    yield seen
    progress._all_instances.events.changed.disconnect(on_changed)


def _follow(bar: ActivityProgress, log: list) -> None:
    def record(_event=None):
        log.append((bar.n, bar.total, bar.desc))

    record()
    for emitter in (bar.events.value, bar.events.total, bar.events.description):
        emitter.connect(record)


@pytest.fixture
def infos(monkeypatch):
    """Info notifications the widgets show, captured (as the ``errors`` fixture does)."""
    from napari_res101unet._qt import base

    seen: list[str] = []
    monkeypatch.setattr(base, "show_info", seen.append)
    return seen


def test_segment_run_moves_a_bar_in_the_activity_dock(
    segment_widget, rgb_image, run_and_wait, activity_log, infos
):
    viewer, widget = segment_widget
    widget._image.value = viewer.add_image(rgb_image, name="tile")
    run_and_wait(widget)
    (log,) = activity_log.values()
    (bar,) = activity_log
    assert log[0][:2] == (0, 0) and log[0][2].startswith("Segment")  # busy, no count yet
    counted = [(n, total) for n, total, _ in log if total > 0]
    assert counted and counted[-1][0] == counted[-1][1]  # it reached its total
    assert any("tiles" in text for *_, text in log)
    assert bar.gui  # napari's activity dialog attached a Qt bar to it
    assert bar not in progress._all_instances  # closed when the run ended
    assert widget._runner.activity is None
    assert infos == [f"Segment: {widget._status.value}"]
    assert "tile labels" in viewer.layers


def test_activity_cancel_button_cancels_the_run(segment_widget, qtbot, run_and_wait):
    viewer, widget = segment_widget
    big = np.random.default_rng(0).integers(0, 255, (8, 256, 256), dtype=np.uint8)
    widget._image.value = viewer.add_image(big, name="stack")
    widget._batch.value = 1  # 8 passes: the engine stops at the next one
    widget._run.clicked.emit()
    qtbot.waitUntil(lambda: widget._runner.activity is not None, timeout=5000)
    widget._runner.activity.cancel()  # the dock's Cancel button, pressed at once
    assert widget._runner.cancel_requested
    assert widget._status.value.startswith("Cancelling")
    qtbot.waitUntil(lambda: widget._runner.worker is None, timeout=180_000)
    assert widget._status.value.startswith("Cancelled")
    assert "stack labels" not in viewer.layers


def test_training_steps_and_status_move_the_bar(make_napari_viewer):
    make_napari_viewer()
    cancelled: list[bool] = []
    bar = ActivityProgress(
        total=0, desc="Train: starting", cancel_callback=lambda: cancelled.append(1)
    )
    try:
        mirror(bar, "Train", {"kind": P.STATUS, "text": "Starting the engine process"})
        assert (bar.n, bar.total) == (0, 0)
        assert bar.desc.startswith("Train: Starting the engine process")
        for step in (1, 2, 3):
            event = {"kind": "step", "step": step, "steps_total": 8, "loss": 0.5}
            mirror(bar, "Train", P.event(7, event))
        assert (bar.n, bar.total) == (3, 8) and bar.desc.startswith("Train: step 3/8")
        mirror(bar, "Train", P.event(7, {"kind": "epoch", "epoch": 1}))  # epochs: no change
        assert (bar.n, bar.total) == (3, 8)
        mirror(bar, "Segment", {"kind": P.PROGRESS, "done": 2, "total": 9}, "blocks")
        assert (bar.n, bar.total) == (2, 9) and bar.desc.startswith("Segment: 2/9 blocks")
        bar.cancel()
        assert bar.is_canceled and cancelled == [1]
    finally:
        bar.close()
