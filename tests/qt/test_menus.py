"""The widgets in napari's menus: *Layers > Segment* as well as *Plugins* (Qt, under Xvfb)."""

from __future__ import annotations

import pytest

PLUGIN = "napari-res101unet"
SEGMENT_MENU = "napari/layers/segment"
WIDGETS = {f"{PLUGIN}.segment_widget": "Segment", f"{PLUGIN}.train_widget": "Train"}
pytestmark = pytest.mark.qt


def _submenu(menu, title: str):
    for action in menu.actions():
        if action.menu() is not None and action.text().replace("&", "") == title:
            return action.menu()
    raise AssertionError(f"no {title!r} submenu in {[a.text() for a in menu.actions()]}")


def test_layers_segment_menu_lists_both_widgets_in_app_model(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    items = get_app_model().menus.get_menu(SEGMENT_MENU)
    ours = {i.command.id: i for i in items if i.command.id.startswith(PLUGIN)}
    assert set(ours) == set(WIDGETS)
    segment, train = (ours[cmd] for cmd in WIDGETS)
    assert segment.group == train.group == "res101unet"
    assert segment.order < train.order  # Segment first, then Train


def test_qt_layers_segment_menu_opens_the_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    segment_menu = _submenu(viewer.window.layers_menu, "Segment")
    segment_menu.aboutToShow.emit()  # napari updates the items' state when a menu opens
    visible = {a.text(): a for a in segment_menu.actions() if a.isVisible() and a.text()}
    assert {"Segment (Res101-UNet)", "Train (Res101-UNet)"} <= set(visible)
    assert all(visible[t].isEnabled() for t in ("Segment (Res101-UNet)", "Train (Res101-UNet)"))

    visible["Train (Res101-UNet)"].trigger()
    qtbot.waitUntil(lambda: "Train (Res101-UNet)" in viewer.window._dock_widgets, timeout=5000)
    dock = viewer.window._dock_widgets["Train (Res101-UNet)"]
    assert type(dock.inner_widget()).__name__ == "TrainWidget", dock.inner_widget()


def test_plugins_menu_still_has_both_widgets(make_napari_viewer):
    viewer = make_napari_viewer()
    ours = _submenu(viewer.window.plugins_menu, "Res101-UNet")
    ours.aboutToShow.emit()
    titles = {a.text().replace("&&", "&") for a in ours.actions() if a.text()}
    assert {"Segment (Res101-UNet)", "Train (Res101-UNet)"} <= titles
