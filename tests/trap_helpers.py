"""Trap modules for a working folder: each records that a process imported it, then hands
over to the real module (so the process goes on, and the test sees who was trapped)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

TRAP = '''"""A trap: records that it was imported, then hands over to the real module."""
import importlib
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, f"trapped-{__name__}-{os.getpid()}"), "w") as f:
    f.write(repr(sys.path))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
del sys.modules[__name__]
sys.modules[__name__] = importlib.import_module(__name__)
'''

MODULES = ("multiprocessing", "distributed", "torch")
"""What a child imports first: spawn's ``-c`` command, then dask's and torch's code."""


def write_traps(folder: Path) -> None:
    for name in MODULES:
        (folder / f"{name}.py").write_text(TRAP, encoding="utf-8")


def trapped(folder: Path) -> list[str]:
    """The ``trapped-<module>-<pid>`` records left in ``folder``."""
    return sorted(p.name for p in folder.glob("trapped-*"))


def child_paths() -> dict:
    """What a child process reports: its pid, working folder, ``sys.path`` and flags."""
    return {
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "path": list(sys.path),
        "safe_path": bool(getattr(sys.flags, "safe_path", False)),
    }
