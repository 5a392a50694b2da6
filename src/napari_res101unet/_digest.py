"""SHA-256 of files, computed once per version of a file (path, mtime, size)."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


@functools.lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file; a checkpoint of ~200 MB is read once per version."""
    stat = os.stat(path)
    return _digest(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
