"""A widget job's bar in napari's activity dock (*Window > Activity*, bottom right)."""

from __future__ import annotations

from napari.utils.progress import cancelable_progress

from ..engine import protocol as P


class ActivityProgress(cancelable_progress):
    """A job's bar in napari's activity dock; its Cancel button calls ``cancel_callback``.

    Created with ``total=0`` (busy, no count yet); :func:`mirror` moves it as the engine
    job reports tiles or training steps.
    """

    def cancel(self) -> None:
        super().cancel()
        if self.cancel_callback is not None:
            self.cancel_callback()

    def advance_to(self, done: int, total: int, text: str | None = None) -> None:
        """Show ``done`` of ``total`` (0: busy without a count) and, if given, ``text``."""
        total, done = max(0, int(total)), max(0, int(done))
        if total != self.total:
            self.total = total
        if done != self.n:
            self.update(done - self.n)
        if text is not None and self.desc not in (text, f"{text}: "):  # tqdm adds ": "
            self.set_description(text)


def mirror(activity: ActivityProgress, context: str, msg: dict, unit: str = "tiles") -> None:
    """Move ``activity`` for one engine message (status, tiles or blocks done, training
    step); ``unit`` names what a progress message counts."""
    kind, event = msg.get("kind"), msg.get("event") or {}
    if kind == P.STATUS:
        activity.advance_to(0, 0, f"{context}: {msg['text']}")
    elif kind == P.PROGRESS:
        done, total = msg["done"], msg["total"]
        activity.advance_to(done, total, f"{context}: {done}/{total} {unit}")
    elif kind == P.EVENT and event.get("kind") == "step":
        done, total = event["step"], event["steps_total"]
        activity.advance_to(done, total, f"{context}: step {done}/{total}")
