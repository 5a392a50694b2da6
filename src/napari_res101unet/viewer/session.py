"""Models known to this napari session: trained by the Train widget or loaded from a file.

No Qt and no torch: a psygnal signal tells the widgets when the list changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psygnal import Signal


@dataclass(frozen=True)
class SessionModel:
    label: str
    path: Path
    origin: str  # "trained" or "file"


class SessionModels:
    """An ordered, de-duplicated list of models, newest first."""

    changed = Signal()

    def __init__(self) -> None:
        self._models: list[SessionModel] = []

    def add(
        self, path: str | Path, label: str | None = None, origin: str = "file"
    ) -> SessionModel:
        path = Path(path)
        entry = SessionModel(label or path.stem, path, origin)
        self._models = [entry] + [m for m in self._models if m.path != path]
        self.changed.emit()
        return entry

    def clear(self) -> None:
        self._models = []
        self.changed.emit()

    def __iter__(self):
        return iter(list(self._models))

    def __len__(self) -> int:
        return len(self._models)


SESSION_MODELS = SessionModels()
