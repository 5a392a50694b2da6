"""Command line: ``napari-res101unet info | segment | train | evaluate | demo | export``.

One module per command (:mod:`.info`, :mod:`.segment`, :mod:`.train`, :mod:`.evaluate`,
:mod:`.demo`, :mod:`.export`), argument parsing and printing only: each calls the library
the same way Python users do. Each has ``add_parser(subparsers)``, which registers the
command with ``set_defaults(func=run)``. :mod:`.common` holds what they share (options made
from the settings dataclasses of :mod:`napari_res101unet.config`, opening ``-m`` models,
Ctrl-C); :mod:`.progress` draws training and file bars; :mod:`.demo_view` writes the
demo's result and opens it in napari; :mod:`.train_ddp` is ``train --nproc N``;
:mod:`.__main__` is ``python -m napari_res101unet.cli``. Errors print one line
(``error: ...``) and exit non-zero; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import summarize
from . import demo, evaluate, export, info, segment, train

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
COMMANDS = (info, segment, train, evaluate, demo, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-res101unet",
        description="Segment medical and biomedical images with Res101_UNet and fine-tune it "
        "on a few labelled images, without a GUI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as exc:
        if args.debug:
            raise
        print(f"error: {summarize(exc)}", file=sys.stderr)
        return EXIT_ERROR
