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


def test_the_cases_of_issue_24_are_in_the_table(rows):
    names = {r.file for r in rows}
    wanted = {
        "Enhanced CT, per-frame rescale", "Enhanced CT, frames stored out of order",
        "mask on Enhanced CT, frames out of order", "nib_codes_0_0.nii.gz",
        "mask on nib_codes_0_0.nii.gz (ITK)", "slicer_overlap.seg.nrrd",
        "mask on sitk_rot2d_mask.mha as NIfTI",
    }  # fmt: skip
    assert wanted <= names, wanted - names
    bundled = {"rtdose_expb.dcm", "liver_expb_1frame.dcm", "siemens_dwi_1000.dcm (mosaic)",
               "4D mask on example4d.nii.gz", "4D mask on example4d.nii.gz as NRRD"}  # fmt: skip
    from conformance_cases import NIBABEL_DATA, PYDICOM_DATA

    if NIBABEL_DATA.is_dir() and PYDICOM_DATA.is_dir():
        assert bundled <= names, bundled - names
    bad = [r for r in rows if r.file in wanted | bundled and not r.match]
    assert not bad, "\n" + markdown(bad)
