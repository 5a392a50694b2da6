"""Durable atomic writes (issue 14, item 2): fsync, symlinks, permissions, stale temp
files of a killed writer, and a SIGKILL in the middle of save_model."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import napari_res101unet
from napari_res101unet.io import files as _atomic
from napari_res101unet.io.files import atomic_target

SRC = Path(napari_res101unet.__file__).resolve().parents[1]  # the package under test


def _write(path: Path, text: str) -> None:
    with atomic_target(path) as tmp:
        tmp.write_text(text)


def test_the_file_and_its_folder_are_synced_around_the_rename(tmp_path, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if sys.platform == "linux" else "?")
        real(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    _write(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert len(synced) == 2
    if sys.platform == "linux":
        assert Path(synced[0]).name.startswith(".a.txt.")  # the file, before the rename
        assert synced[1] == str(tmp_path)  # the folder, after it


def test_a_symlink_target_is_followed_and_the_link_kept(tmp_path):
    real = tmp_path / "store" / "model.txt"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    _write(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "store"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_permissions_of_an_existing_target_are_kept(tmp_path):
    target = tmp_path / "private.txt"
    target.write_text("old")
    target.chmod(0o600)
    _write(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    shared = tmp_path / "shared.txt"
    shared.write_text("old")
    shared.chmod(0o644)
    _write(shared, "new")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.skipif(os.name == "nt", reason="stale files are only cleaned on POSIX")
def test_stale_temp_files_of_a_dead_writer_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "m.safetensors"
    prefix = f".{target.name}.{_atomic._HOST}-"
    stale = tmp_path / f"{prefix}{_dead_pid()}.abc123.tmp"
    live = tmp_path / f"{prefix}{os.getppid()}.def456.tmp"  # a live process: kept
    other = tmp_path / f".other.safetensors.{_atomic._HOST}-{_dead_pid()}.x.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"x" * 100)
    _write(target, "ok")
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert target.read_text() == "ok"


_SAVER = """
import sys, torch
from napari_res101unet import build_model, save_model
torch.manual_seed(0)
model = build_model(in_channels=1, classes=2)
print("ready", flush=True)
while True:
    save_model(model, sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_sigkill_in_the_middle_of_save_model_leaves_a_loadable_target(tmp_path):
    import torch

    from napari_res101unet import build_model, load_model, save_model

    target = tmp_path / "m.safetensors"
    torch.manual_seed(1)
    first = build_model(in_channels=1, classes=2)
    save_model(first, target)
    before = target.read_bytes()
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(target)], env=env, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 60
        temps: list[Path] = []
        while not temps and time.monotonic() < deadline:
            temps = [p for p in tmp_path.iterdir() if p.name.startswith(".m.safetensors.")]
            time.sleep(0.005)
        assert temps, "the writer never started a temporary file"
        time.sleep(0.05)  # well inside the write of ~200 MB
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".m.safetensors.")]
    assert leftovers, "the kill did not land inside a write"
    loaded = load_model(target)  # the old file, or a complete new one
    assert loaded.spec.in_channels == 1
    assert len(target.read_bytes()) == len(before)
    save_model(first, target)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.safetensors.")]
    assert target.read_bytes()[:8] == before[:8]
