"""Screenshot napari's *Layers > Segment* menu with this plugin's entries, for the documentation.

Usage (a virtual display is enough; no torch is imported)::

    xvfb-run -a -s "-screen 0 1280x800x24" python scripts/screenshot_layers_menu.py [OUT.png]

Opens napari with the liver CT sample, opens *Layers*, moves to *Segment* and opens it (as
a user does with the keyboard), then grabs the screen around the window and the two menus.
Default output: docs/images/layers_segment_menu.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
from qtpy.QtCore import QPoint, QRect, Qt, QTimer
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication, QMenu

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "napari-res101unet"
WINDOW = QRect(0, 0, 1100, 720)


def _submenu(menu: QMenu, title: str) -> QMenu:
    for action in menu.actions():
        if action.menu() is not None and action.text().replace("&", "") == title:
            return action.menu()
    raise LookupError(f"no {title!r} submenu in {[a.text() for a in menu.actions()]}")


def _open_menus(viewer: napari.Viewer) -> tuple[QMenu, QMenu]:
    window = viewer.window._qt_window
    layers = viewer.window.layers_menu
    segment = _submenu(layers, "Segment")
    window.menuBar().setActiveAction(layers.menuAction())  # opens Layers
    QTest.qWait(500)
    layers.setActiveAction(segment.menuAction())
    QTest.keyClick(layers, Qt.Key.Key_Right)  # opens Segment, as the keyboard does
    QTest.qWait(800)
    if not segment.isVisible():
        segment.popup(layers.mapToGlobal(layers.actionGeometry(segment.menuAction()).topRight()))
        QTest.qWait(500)
    return layers, segment


def _grab(out: Path, viewer: napari.Viewer) -> None:
    layers, segment = _open_menus(viewer)
    titles = [a.text() for a in segment.actions() if a.isVisible() and a.text()]
    if not any("(Res101-UNet)" in t for t in titles):
        raise RuntimeError(f"plugin entries missing from Layers > Segment: {titles}")
    area = WINDOW.united(layers.geometry()).united(segment.geometry())
    area = area.intersected(QRect(QPoint(0, 0), area.bottomRight()))
    screen = QApplication.primaryScreen()
    pixmap = screen.grabWindow(0, area.x(), area.y(), area.width(), area.height())
    out.parent.mkdir(parents=True, exist_ok=True)
    if not pixmap.save(str(out)):
        raise OSError(f"could not write {out}")
    print(f"wrote {out} ({pixmap.width()}x{pixmap.height()}); Segment menu: {titles}")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "docs" / "images" / "layers_segment_menu.png"
    viewer = napari.Viewer(title="napari")
    viewer.open_sample(PLUGIN, "liver_ct")
    viewer.layers.selection.active = viewer.layers["liver CT"]
    window = viewer.window._qt_window
    window.setGeometry(WINDOW)
    window.show()

    def shoot():
        try:
            _grab(out, viewer)
        finally:
            QTimer.singleShot(200, viewer.close)

    QTimer.singleShot(1500, shoot)
    napari.run()
    return 0 if out.exists() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
