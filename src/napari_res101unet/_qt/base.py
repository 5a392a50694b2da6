"""What the Segment and Train widgets share: the engine-job skeleton, pickers, messages.

:class:`EngineWidget` is the common skeleton (engine process, runner, Run/Cancel buttons,
progress bar, status line, device picker, running state); the widgets add their form and
what to do with a result, calling :mod:`napari_res101unet.viewer` for everything that is
not Qt."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, ProgressBar, PushButton
from napari.qt.threading import create_worker, thread_worker
from napari.utils.notifications import show_error, show_info

from ..config import ALL_GPUS
from ..engine import protocol as P
from ..engine.client import EngineClient, get_engine
from ..errors import Cancelled, EngineError, summarize
from ..registry import UNTRAINED, list_models
from ..viewer.session import SESSION_MODELS
from .activity import ActivityProgress, mirror

if TYPE_CHECKING:
    pass

LOAD_FROM_FILE = "__load_from_file__"
MODEL_FILE_FILTER = (
    "Res101_UNet models (*.safetensors *.pth *.pt *.bin *.zip rdf.yaml bioimageio.yaml);;"
    "All files (*)"
)


def model_choices(widget: Any = None, *, with_untrained: bool = True) -> list[tuple[str, Any]]:
    """Choices for a model picker: this session's models, the model folder, untrained, file."""
    choices: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for entry in SESSION_MODELS:
        tag = "trained in this session" if entry.origin == "trained" else "file"
        choices.append((f"{entry.label} ({tag})", str(entry.path)))
        seen.add(str(entry.path))
    for entry in list_models():
        if str(entry.path) not in seen:
            choices.append((f"{entry.name} ({entry.summary})", str(entry.path)))
    if with_untrained:
        choices.append(("untrained Res101_UNet (random weights: for trying only)", UNTRAINED))
    choices.append(("Load from file...", LOAD_FROM_FILE))
    return choices


def follow_session_models(combo: ComboBox) -> None:
    """Refresh ``combo`` when session models change, until its widget is destroyed."""

    def refresh() -> None:
        try:
            combo.reset_choices()
        except RuntimeError:  # the Qt widget is gone
            SESSION_MODELS.changed.disconnect(refresh)

    SESSION_MODELS.changed.connect(refresh)
    combo.native.destroyed.connect(lambda *_: SESSION_MODELS.changed.disconnect(refresh))


def ask_model_file(parent: Any = None) -> str | None:
    """Ask the user for a model file; None when cancelled."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(
        parent, "Load a Res101_UNet model", "", MODEL_FILE_FILTER
    )
    return path or None


def handle_load_from_file(combo: ComboBox, previous: Any, parent: Any = None) -> None:
    """When "Load from file..." is picked: ask for a file and select it (or go back)."""
    path = ask_model_file(parent)
    if path is None:
        combo.value = previous if previous in [c[1] for c in model_choices()] else UNTRAINED
        return
    SESSION_MODELS.add(path, label=Path(path).stem, origin="file")
    combo.reset_choices()
    combo.value = str(path)


def optional_int(label: str, special: str, maximum: int, step: int = 1, tooltip: str = ""):
    """An integer box whose 0 shows as ``special`` ("auto", "none"...); read with int()."""
    box = FloatSpinBox(label=label, value=0, min=0, max=maximum, step=step)
    box.native.setDecimals(0)
    box.native.setSpecialValueText(special)
    box.tooltip = tooltip or f"0 = {special}"
    return box


def compact_combos(*combos: Any, chars: int = 18) -> None:
    """Let long model/layer names elide instead of widening the dock."""
    from qtpy.QtWidgets import QComboBox, QSizePolicy

    for combo in combos:
        native = combo.native
        native.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        native.setMinimumContentsLength(chars)
        native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)


def device_choices(info: dict, all_gpus: bool = False) -> list[tuple[str, str]]:
    """``auto`` (naming what it picks) and each device the engine found; with ``all_gpus``
    and two or more CUDA devices, also "all GPUs" (training: one process per GPU)."""
    devices: dict = info.get("devices") or {}
    if not devices:
        return [("auto", "auto")]
    first = next(iter(devices.values()))
    found = [(f"auto: {first}", "auto")] + [(desc, name) for name, desc in devices.items()]
    gpus = sum(name.startswith("cuda:") for name in devices)
    if all_gpus and gpus > 1:
        found.append((f"all GPUs ({gpus}, one process each)", ALL_GPUS))
    return found


def refresh_device_choices(combo: ComboBox, info: dict, all_gpus: bool = False) -> None:
    """Re-read a device picker whose choices callable reads ``info`` (the engine's report)."""
    current = combo.value
    combo.reset_choices()
    for i, (text, _value) in enumerate(device_choices(info, all_gpus)):
        combo.native.setItemText(i, text)  # items that existed keep stale text otherwise
    if current in combo.choices:
        combo.value = current


def status_label() -> Label:
    """A full-width, word-wrapping status line."""
    from qtpy.QtWidgets import QSizePolicy

    label = Label(value="Ready.")
    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
    label.native.setMinimumHeight(label.native.fontMetrics().lineSpacing() * 4)
    return label


def warm_engine(engine: EngineClient, on_ready) -> None:
    """Start the engine process in the background; ``on_ready(info)`` on the GUI thread."""
    if engine.running:
        on_ready(engine.info)
        return
    worker = create_worker(engine.start, _start_thread=False)
    worker.returned.connect(on_ready)
    worker.errored.connect(lambda exc: None)  # reported when the user runs something
    worker.start()


class EngineRunner:
    """Runs a widget's engine jobs, one at a time, in a napari worker thread.

    The thread starts the engine process if needed, submits the job and yields its
    messages to ``on_message`` on the GUI thread; ``on_running(bool)`` brackets the run.
    Each run also has a bar in napari's activity dock (:attr:`activity`, with a Cancel
    button calling ``on_cancel``), and ends in a notification: the widget's status line
    once ``on_done`` has written it, or the error.
    """

    def __init__(
        self,
        engine: EngineClient,
        context: str,
        status: Label,
        on_message,
        on_running,
        on_cancel=None,
    ) -> None:
        self.engine, self.context, self.status = engine, context, status
        self.on_message, self.on_running = on_message, on_running
        self.on_cancel = on_cancel or self.cancel
        self.worker: Any = None
        self.job: Any = None
        self.activity: ActivityProgress | None = None
        self.cancel_requested = False
        self.unit = "tiles"

    def start(self, op: str, payload: dict, on_done, unit: str = "tiles") -> None:
        """Run ``op``; ``on_done(job)`` gets the finished EngineJob (None if cancelled first);
        ``unit`` names what the job's progress messages count (tiles, blocks)."""
        self.cancel_requested, self.job, self.unit = False, None, unit
        self.on_running(True)
        self.activity = ActivityProgress(
            total=0, desc=f"{self.context}: starting", cancel_callback=self.on_cancel
        )
        worker = _engine_worker(self, op, payload)
        worker.yielded.connect(self._track)
        worker.yielded.connect(self.on_message)
        worker.returned.connect(on_done)
        worker.returned.connect(self._notify_done)
        worker.errored.connect(lambda exc: notify_error(self.status, self.context, exc))
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()

    def cancel(self) -> None:
        """Ask the running job to stop at its next batch or step."""
        self.cancel_requested = True
        if self.job is not None:
            self.job.cancel()

    def _track(self, msg: dict) -> None:
        """Mirror the job's progress in the activity dock."""
        if self.activity is not None:
            mirror(self.activity, self.context, msg, self.unit)

    def _notify_done(self, job: Any) -> None:
        show_info(f"{self.context}: {self.status.value}")

    def _finished(self) -> None:
        if self.activity is not None:
            self.activity.close()
        self.worker, self.job, self.activity = None, None, None
        self.on_running(False)


@thread_worker(ignore_errors=True)  # errors are shown by EngineRunner's own handler
def _engine_worker(runner: EngineRunner, op: str, payload: dict):
    """Start the engine if needed, submit ``op`` and pass its messages on.

    RuntimeErrors are re-raised as EngineError: napari's workers would swallow them.
    """
    try:
        if not runner.engine.running:
            yield {"kind": P.STATUS, "text": "Starting the engine process (imports torch)..."}
            try:
                info = runner.engine.start(cancel=lambda: runner.cancel_requested)
            except Cancelled:
                return None
            yield {"kind": P.ENGINE_READY, "info": info}
        if runner.cancel_requested:
            return None
        runner.job = runner.engine.submit(op, **payload)
        if runner.cancel_requested:  # Cancel came while submitting: cancel() saw no job yet
            runner.job.cancel()
    except RuntimeError as exc:
        raise EngineError("RuntimeError", str(exc)) from exc
    yield from runner.job
    return runner.job


def notify_error(status: Label | None, context: str, exc: BaseException | str) -> None:
    """Show an error as a napari notification and in the widget's status line."""
    message = summarize(exc)
    if status is not None:
        status.value = f"Error: {message}"
    show_error(f"{context}: {message}")


class EngineWidget(Container):
    """The skeleton of a dock widget that runs engine jobs.

    Subclasses build their form in :meth:`build`, start jobs with ``self._runner.start``
    and handle their own messages in :meth:`on_job_message`. This class owns the engine
    process (one per widget kind), the Run/Cancel buttons, the progress bar, the status
    line, the device picker and the running state.
    """

    run_text = "Run"
    all_gpus = False  # offer "all GPUs" in the device picker (training)

    def __init__(self, viewer: Any, engine: str, context: str) -> None:
        super().__init__(labels=False)
        self._viewer, self.context = viewer, context
        self._engine = get_engine(engine)
        self._device = ComboBox(
            label="Device",
            choices=lambda _w=None: device_choices(self._engine.info, self.all_gpus),
        )
        self._run = PushButton(text=self.run_text)
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._progress = ProgressBar(label="Progress", value=0, min=0, max=1, visible=False)
        self._status = status_label()
        self._runner = EngineRunner(
            self._engine, context, self._status, self._on_message, self._set_running, self.cancel
        )
        self.build()
        self._run.changed.connect(self.run)
        self._cancel.changed.connect(self.cancel)
        warm_engine(self._engine, self._on_engine_ready)

    def build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def buttons(self) -> Container:
        return Container(widgets=[self._run, self._cancel], layout="horizontal", labels=False)

    def run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def cancel(self) -> None:
        """Ask the running job to stop at its next batch or step."""
        self._runner.cancel()
        self._status.value = self.cancel_text()

    def cancel_text(self) -> str:
        return "Cancelling..."

    def fail(self, exc: BaseException | str) -> None:
        notify_error(self._status, self.context, exc)

    def show_progress(self, done: int, total: int) -> None:
        self._progress.visible = True
        self._progress.max = max(1, int(total))
        self._progress.value = min(int(done), self._progress.max)

    def on_job_message(self, msg: dict) -> None:
        """A ``PROGRESS`` or ``EVENT`` reply of the running job (see engine.protocol)."""

    def _on_message(self, msg: dict) -> None:
        kind = msg.get("kind")
        if kind == P.STATUS:
            self._status.value = msg["text"]
        elif kind == P.ENGINE_READY:
            self._on_engine_ready(msg["info"])
        else:
            self.on_job_message(msg)

    def _on_engine_ready(self, info: dict) -> None:
        refresh_device_choices(self._device, info, self.all_gpus)

    def _set_running(self, running: bool) -> None:
        self._run.enabled = not running
        self._cancel.enabled = running
        if not running:
            self._progress.visible = False
