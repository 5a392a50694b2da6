"""Item 6 of issue 15: our reading agrees with the peer libraries' own reading.

See tests/io/conformance_cases.py for the cases; ``python scripts/conformance_table.py``
prints the same comparison as the table in docs/reader.md.
"""

from __future__ import annotations

import pytest
from conformance_written import all_rows, markdown


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return all_rows(tmp_path_factory.mktemp("conformance"))


def test_files_agree_with_their_peer_libraries(rows):
    files = [r for r in rows if not r.file.startswith("mask on")]
    written = [r for r in files if r.peer.startswith(("SimpleITK", "tifffile"))]
    assert len(written) >= 6  # the written cases never skip
    bad = [r for r in files if not r.match]
    assert not bad, "\n" + markdown(bad)


def test_masks_written_on_each_source_are_read_back_on_its_grid(rows):
    masks = [r for r in rows if r.file.startswith("mask on")]
    assert len(masks) >= 5
    bad = [r for r in masks if not r.match]
    assert not bad, "\n" + markdown(bad)


def test_bundled_files_are_covered_when_present(rows):
    from conformance_cases import NIBABEL_DATA, PYDICOM_DATA

    if not (NIBABEL_DATA.is_dir() and PYDICOM_DATA.is_dir()):
        pytest.skip("nibabel's or pydicom's bundled test files are absent")
    peers = {r.peer for r in rows}
    assert {"nibabel", "pydicom", "highdicom"} <= peers
