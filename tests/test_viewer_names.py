"""Widget runs get unique model names even before a run has written anything (issue 14,
item 1: two short runs started together must not share a file)."""

from __future__ import annotations

from napari_res101unet import viewer as api
from napari_res101unet.viewer import train as viewer_train


def test_names_handed_out_are_unique_before_any_file_exists(tmp_path):
    names = [api.unique_model_path("scan", tmp_path) for _ in range(5)]
    assert len(set(names)) == 5
    assert not any(p.exists() for p in names)
    assert all(p.parent == tmp_path and p.suffix == ".safetensors" for p in names)


def test_a_name_whose_last_checkpoint_exists_is_taken(tmp_path):
    first = api.unique_model_path("scan", tmp_path)
    stem = first.name.removesuffix(".safetensors")
    other = tmp_path / f"{stem}-x.safetensors"
    (tmp_path / f"{other.stem}.last.safetensors").write_bytes(b"a run without a best model")
    assert viewer_train._taken(other)
