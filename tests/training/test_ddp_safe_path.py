"""The ranks of ``train --nproc N`` start without the working folder on ``sys.path``
(issue 24, item 9): torch's launcher spawns them with ``python -c``, which put it first."""

from __future__ import annotations

import os
import sys

import pytest

from napari_res101unet.training.local_ranks import launch
from trap_helpers import child_paths, trapped, write_traps

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="PYTHONSAFEPATH (a safe sys.path) is Python 3.11+"
)


@pytest.mark.slow  # about 13 s on 2 cores: each rank imports torch
def test_two_ranks_import_nothing_from_the_working_folder(tmp_path, monkeypatch):
    write_traps(tmp_path)
    monkeypatch.chdir(tmp_path)
    reports = launch(child_paths, nproc=2)
    assert trapped(tmp_path) == []
    assert sorted(reports) == [0, 1]
    for report in reports.values():
        assert report["pid"] != os.getpid() and report["cwd"] == str(tmp_path)
        assert report["safe_path"] and "" not in report["path"], report
        assert str(tmp_path) not in report["path"]
