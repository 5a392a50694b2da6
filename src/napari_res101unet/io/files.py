"""Files written safely and known by content: durable atomic writes, and SHA-256 digests.

Writes go to a temporary file beside the target, renamed over it.

What :func:`atomic_target` guarantees:

- the target is either the old file or the complete new one, also after a crash or a power
  cut: the temporary file is flushed to disk (fsync) before the rename and the folder
  after it;
- a symlink target is followed: the file it points to is replaced, the link stays;
- an existing target keeps its permission bits (a new one gets the usual ``0o666 & ~umask``;
  mkstemp alone would make it private);
- temporary files left by a killed writer (``.<name>.<host>-<pid>.<random><suffix>``, whose
  process is gone) are removed by the next write to the same target.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


@contextmanager
def atomic_target(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to.

    On success the temporary file is synced, gets the target's permissions and replaces
    ``path`` (or the file a symlink ``path`` points to) in one rename, and the folder is
    synced; on any failure it is removed and ``path`` is left as it was.
    """
    path = _resolve(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.{_HOST}-"
    _remove_stale(path.parent, prefix, suffix)
    fd, name = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():
            _fsync_file(tmp)
            os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _resolve(path: Path) -> Path:
    """The file a (chain of) symlink(s) names; ``path`` itself otherwise."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return _FILE_MODE


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (not possible on every OS/filesystem: then skipped)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale(folder: Path, prefix: str, suffix: str) -> None:
    """Remove this host's temporary files of ``prefix`` whose writing process is gone."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(suffix)]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with suppress(OSError):
                os.unlink(folder / name)


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: leave its file alone
    return True


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
