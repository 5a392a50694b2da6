"""Walks of folders over symbolic-link loops (issue 24, item 8): each image listed once,
every walk ends, and ``segment --recursive`` does not refuse with a false "collide"."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_res101unet.io.inputs import expand_inputs, folder_inputs
from napari_res101unet.io.outputs import plan_outputs

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


@contextmanager
def ends_within(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def stop(signum, frame):
        raise TimeoutError(f"the walk did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cohort(root: Path) -> Path:
    """``root/cases/{a.tif, sub/b.tif}``; returns ``cases``."""
    cases = root / "cases"
    (cases / "sub").mkdir(parents=True)
    for path in (cases / "a.tif", cases / "sub" / "b.tif"):
        tifffile.imwrite(path, np.zeros((8, 8), np.uint8))
    return cases


def test_one_loop_lists_each_image_once(tmp_path):
    cases = cohort(tmp_path)
    (cases / "sub" / "loop").symlink_to(cases / "sub", target_is_directory=True)
    with ends_within(10):
        found = expand_inputs([str(cases)], recursive=True)
    assert found == [cases / "a.tif", cases / "sub" / "b.tif"]
    assert len(plan_outputs(found, tmp_path / "out", None)) == 2  # no false "collide"


def test_two_loops_end(tmp_path):
    cases = cohort(tmp_path)
    (cases / "sub" / "up").symlink_to(cases, target_is_directory=True)
    (cases / "sub" / "again").symlink_to("..", target_is_directory=True)
    (cases / "round").symlink_to("sub", target_is_directory=True)
    with ends_within(10):
        found = folder_inputs(cases, recursive=True)
        globbed = expand_inputs([str(cases / "**" / "*.tif")])
        everything = expand_inputs([str(cases / "**")], recursive=True)
    assert found == globbed == everything == [cases / "a.tif", cases / "sub" / "b.tif"]


def test_a_link_to_a_parent_and_a_linked_folder(tmp_path):
    cases = cohort(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tifffile.imwrite(elsewhere / "c.tif", np.zeros((8, 8), np.uint8))
    (cases / "sub" / "parent").symlink_to(tmp_path, target_is_directory=True)
    (cases / "more").symlink_to(elsewhere, target_is_directory=True)
    (cases / "same.tif").symlink_to(cases / "a.tif")
    with ends_within(10):
        found = expand_inputs([str(cases)], recursive=True)
    # a linked folder outside the cohort is still walked; a linked file already listed
    # and the parent reached through a link (which leads back to the cohort) are not
    names = sorted(p.relative_to(cases).as_posix() for p in found)
    assert names == ["a.tif", "more/c.tif", "sub/b.tif"]


def test_broken_links_are_listed_and_reported_later(tmp_path):
    cases = cohort(tmp_path)
    (cases / "gone.tif").symlink_to(tmp_path / "missing.tif")
    found = expand_inputs([str(cases)], recursive=True)
    assert cases / "gone.tif" in found and len(found) == 3
