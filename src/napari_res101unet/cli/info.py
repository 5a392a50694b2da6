"""``napari-res101unet info [MODEL]``: versions, devices, the model folder.

Names that come from files (model file names, class names, paths) are printed with
control characters escaped (:func:`printable`).
"""

from __future__ import annotations

import argparse
import json
import unicodedata

from .. import __version__

_HIDDEN = ("Cc", "Cf", "Zl", "Zp")  # controls, format (bidi overrides), line separators


def printable(text: object) -> str:
    r"""``text`` with every control or format character escaped (``\x1b``, ``\u202e``), so
    a file or class name cannot drive the terminal (clear it, retitle it, reorder text).

    Examples
    --------
    >>> printable("liver\x1b[2J")
    'liver\\x1b[2J'
    """
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _HIDDEN else ch
        for ch in str(text)
    )


def add_parser(sub) -> None:
    p = sub.add_parser(
        "info",
        help="versions, devices found and the model folder",
        description="Print versions, the compute devices found, the model folder and its "
        "models; with MODEL, what that model file holds.",
    )
    p.add_argument("model", nargs="?", help="a model file or name to describe")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import platform

    import numpy
    import segmentation_models_pytorch as smp
    import torch

    from ..config import models_dir
    from ..device import available_devices, describe_device, resolve_device
    from ..registry import find_model, list_models

    print(f"napari-res101unet {__version__}")
    print(
        f"python {platform.python_version()}, numpy {numpy.__version__}, torch "
        f"{torch.__version__} (CUDA {torch.version.cuda or 'none'}), smp {smp.__version__}"
    )
    print("devices:")
    for name in available_devices():
        print(f"  {describe_device(resolve_device(name))}")
    folder = models_dir()
    models = list_models(folder)
    print(printable(f"model folder: {folder} ({len(models)} models)"))
    for entry in models:
        if not entry.readable:
            print(printable(f"  {entry.name}: {entry.summary}"))
            continue
        print(
            printable(
                f"  {entry.name}: classes {entry.classes}, {entry.in_channels} channels, "
                f"{entry.summary}"
            )
        )
    if args.model:
        print_model(find_model(args.model))
    return 0


def print_model(path) -> None:
    """The spec, provenance and training summary in a checkpoint's header."""
    from ..checkpoint import read_header

    header = read_header(path)
    spec = dict(header["spec"])
    training = spec.pop("training", None) or {}
    print(printable(f"model {path}:"))  # JSON below escapes every non-ASCII character
    print(json.dumps({"spec": spec, "provenance": header.get("provenance")}, indent=2))
    if training:
        print(f"training: {json.dumps({k: v for k, v in training.items() if k != 'history'})}")
