"""What the commands share: options made from the settings dataclasses, loading ``-m``
models and Ctrl-C handling (progress bars: :mod:`.progress`). No torch on import."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

_TYPES = {"int": int, "float": float, "str": str}


def add_settings(
    parser: argparse.ArgumentParser, cls: type, names: Sequence[str], *, none: str = "auto"
) -> None:
    """Add ``--name`` options for the fields ``names`` of a settings dataclass.

    Type, default and help come from the dataclass (the one source of defaults); a
    boolean field that defaults to True becomes ``--no-<name>``, one that defaults to
    False a plain flag.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        f = fields[name]
        flag = name.replace("_", "-")
        text = f.metadata.get("help", name)
        if isinstance(f.default, bool):
            if f.default:
                parser.add_argument(
                    f"--no-{flag}", dest=name, action="store_false", help=f"no {text}"
                )
            else:
                parser.add_argument(f"--{flag}", dest=name, action="store_true", help=text)
            continue
        kind = _TYPES[str(f.type).split("|")[0].strip()]
        shown = f.default if f.default is not None else f.metadata.get("none", none)
        parser.add_argument(
            f"--{flag}", dest=name, type=kind, default=f.default, help=f"{text} ({shown})"
        )


def settings_from(args: argparse.Namespace, cls: type, names: Sequence[str]) -> Any:
    """The settings dataclass ``cls`` with the given options (validated on creation)."""
    return cls(**{name: getattr(args, name) for name in names})


def load_cli_model(name: str, device: str):
    """The model ``-m`` names (a path, a folder name, or ``untrained``), opened with
    :func:`~napari_res101unet.registry.open_model`."""
    from .. import registry

    if registry.find_model(name) == registry.UNTRAINED:
        print(
            "warning: using an untrained (random) Res101_UNet; its labels are meaningless",
            file=sys.stderr,
        )
    return registry.open_model(name, device)


def start_model(name: str | None):
    """The model ``-m`` names for training: a path or a name in the model folder (None or
    ``untrained``: a new model)."""
    from ..registry import UNTRAINED, find_model

    found = None if name is None else find_model(name)
    return None if found == UNTRAINED else found


def fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


@contextmanager
def graceful_interrupt() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C asks training to stop (keeping the best model); a second one aborts."""
    asked = []

    def handler(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


def add_pixel_size(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--pixel-size",
        type=float,
        default=None,
        metavar="SIZE",
        help=f"in-plane pixel size (e.g. mm) {what}; resampled to the model's when they "
        "differ by more than 10%%",
    )


def pixel_spacing(pixel_size: float | None, spacings: list) -> list | None:
    """``train``'s ``spacing``: the given pixel size for every pair, else the files'
    spacings (None when no file gives one). Raises ValueError for 0/NaN/negative sizes."""
    from ..preprocess.spacing import check_pixel_size

    size = check_pixel_size(pixel_size, "--pixel-size")
    if size is not None:
        return list(size)
    return spacings if any(s is not None for s in spacings) else None
