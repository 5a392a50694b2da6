"""dask's nannies and workers start without the working folder on ``sys.path`` (issue 24,
item 9): a ``multiprocessing.py`` or ``distributed.py`` there ran in every spawned child."""

from __future__ import annotations

import os
import sys

import pytest

from trap_helpers import child_paths, trapped, write_traps

pytest.importorskip("distributed")

from napari_res101unet.inference.cluster import open_client, safe_child_paths

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="PYTHONSAFEPATH (a safe sys.path) is Python 3.11+"
)


def test_a_local_cluster_imports_nothing_from_the_working_folder(tmp_path, monkeypatch):
    write_traps(tmp_path)
    monkeypatch.chdir(tmp_path)
    with open_client(workers=1) as client:
        report = client.submit(child_paths, pure=False).result(timeout=60)
    assert trapped(tmp_path) == []
    assert report["pid"] != os.getpid() and report["cwd"] == str(tmp_path)
    assert report["safe_path"] and "" not in report["path"], report
    assert str(tmp_path) not in report["path"]


def test_safe_child_paths_restores_the_environment_and_sys_path(monkeypatch):
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    with safe_child_paths():
        assert os.environ["PYTHONSAFEPATH"] == "1" and "" not in sys.path
    assert "PYTHONSAFEPATH" not in os.environ and sys.path[0] == ""
