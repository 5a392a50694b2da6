"""``napari-res101unet info [MODEL]``: versions, devices, the model folder."""

from __future__ import annotations

import argparse
import json

from .. import __version__


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
    print(f"model folder: {folder} ({len(models)} models)")
    for entry in models:
        if not entry.readable:
            print(f"  {entry.name}: {entry.summary}")
            continue
        print(
            f"  {entry.name}: classes {entry.classes}, {entry.in_channels} channels, "
            f"{entry.summary}"
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
    print(f"model {path}:")
    print(json.dumps({"spec": spec, "provenance": header.get("provenance")}, indent=2))
    if training:
        print(f"training: {json.dumps({k: v for k, v in training.items() if k != 'history'})}")
