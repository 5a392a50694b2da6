"""A small live plot of training loss and validation IoU per epoch (plain QPainter)."""

from __future__ import annotations

from itertools import pairwise

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

LOSS_COLOR = QColor(255, 160, 60)
IOU_COLOR = QColor(90, 200, 255)
AXIS_COLOR = QColor(150, 150, 150)


class TrainingPlot(QWidget):
    """Loss (left axis, scaled to its maximum) and validation IoU (right axis, 0..1)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.losses: list[float] = []
        self.ious: list[float | None] = []
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Training loss (orange) and validation IoU (blue) per epoch")

    def add_epoch(self, loss: float | None, iou: float | None) -> None:
        self.losses.append(float("nan") if loss is None else float(loss))
        self.ious.append(iou)
        self.update()

    def clear(self) -> None:
        self.losses, self.ious = [], []
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = painter.fontMetrics()
        area = QRectF(self.rect()).adjusted(
            fm.horizontalAdvance("0.00") + 8, 8, -fm.horizontalAdvance("1.0") - 8, -fm.height() - 8
        )
        painter.setPen(QPen(AXIS_COLOR, 1))
        painter.drawRect(area)
        n = len(self.losses)
        if n == 0:
            painter.drawText(
                area, Qt.AlignmentFlag.AlignCenter, "loss and validation IoU per epoch"
            )
            return
        finite = [v for v in self.losses if v == v]
        top = max(finite) if finite else 1.0
        painter.drawText(
            QRectF(0, area.top() - 4, area.left() - 4, fm.height()),
            Qt.AlignmentFlag.AlignRight,
            f"{top:.2f}",
        )
        painter.drawText(
            QRectF(area.right() + 4, area.top() - 4, 40, fm.height()),
            Qt.AlignmentFlag.AlignLeft,
            "1.0",
        )
        painter.drawText(
            QRectF(area.left(), area.bottom() + 2, area.width(), fm.height()),
            Qt.AlignmentFlag.AlignCenter,
            f"epoch 1..{n}",
        )
        self._line(
            painter,
            area,
            [v / top if top > 0 and v == v else None for v in self.losses],
            LOSS_COLOR,
        )
        self._line(painter, area, self.ious, IOU_COLOR)
        legend = f"loss {finite[-1]:.3f}" if finite else "loss"
        last_iou = next((v for v in reversed(self.ious) if v is not None), None)
        if last_iou is not None:
            legend += f"   val IoU {last_iou:.3f}"
        painter.setPen(QPen(AXIS_COLOR))
        painter.drawText(
            area.adjusted(6, 4, -6, -4),
            Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight,
            legend,
        )

    @staticmethod
    def _line(painter: QPainter, area: QRectF, values: list, color: QColor) -> None:
        n = len(values)
        points = [
            QPointF(
                area.left() + area.width() * (i / max(n - 1, 1)),
                area.bottom() - area.height() * min(max(v, 0.0), 1.0),
            )
            for i, v in enumerate(values)
            if v is not None
        ]
        painter.setPen(QPen(color, 2))
        for a, b in pairwise(points):
            painter.drawLine(a, b)
        for p in points:
            painter.drawEllipse(p, 2.5, 2.5)
