"""Intensity records and mapping an input onto the training distribution."""

from __future__ import annotations

import numpy as np
import pytest
from test_spacing import Spaced, square

from napari_res101unet.checkpoint import spec_from_header
from napari_res101unet.inference.segment import run_segmentation
from napari_res101unet.model import ModelSpec
from napari_res101unet.preprocess.intensity import (
    PERCENTILES,
    check_record,
    intensity_record,
    landmarks,
    match_intensity,
    plan_match,
)


def tissue(seed: int = 0, size: int = 96) -> np.ndarray:
    """A uint8 "CT slice": black air, grey tissue blobs and a brighter organ."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size), float)
    body = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.42 * size) ** 2
    image[body] = 100 + rng.normal(0, 12, body.sum())
    organ = (yy - 0.4 * size) ** 2 + (xx - 0.55 * size) ** 2 < (0.18 * size) ** 2
    image[organ] = 150 + rng.normal(0, 10, organ.sum())
    return np.clip(image, 0, 255).astype(np.uint8)


def compress(image: np.ndarray, grey: float = 100.0, factor: float = 1 / 3) -> np.ndarray:
    """The image re-rendered with a wide window: contrast compressed around ``grey``."""
    return np.rint(grey + factor * (image.astype(float) - grey)).astype(np.uint8)


def _stack(image):
    return image[None, ..., None]


def test_a_window_compressed_image_gets_its_percentiles_back():
    original = tissue(0)
    record = intensity_record([(_stack(tissue(1)), None), (_stack(tissue(2)), None)])
    assert record["percentiles"] == list(PERCENTILES) and len(record["values"]) == 1
    wide = compress(original)
    mapped, note = match_intensity(_stack(wide), record)
    assert "intensities mapped onto the training distribution" in note
    assert mapped.dtype == np.uint8 and mapped.shape == (1, 96, 96, 1)
    before = landmarks([original.reshape(-1).astype(float)])[0]
    squeezed = landmarks([wide.reshape(-1).astype(float)])[0]
    after = landmarks([mapped.reshape(-1).astype(float)])[0]
    inner = slice(1, -1)  # 5th..95th
    assert np.abs(squeezed - before)[inner].max() > 30
    assert np.abs(after - before)[inner].max() <= 8  # back within a few grey levels


def test_an_image_like_the_training_data_is_left_alone():
    record = intensity_record([(_stack(tissue(1)), None), (_stack(tissue(2)), None)])
    same = _stack(tissue(0))
    assert plan_match(same, record) is None
    mapped, note = match_intensity(same, record)
    assert mapped is same and note == ""
    assert match_intensity(same, None) == (same, "")  # no record: as before


def test_gray_replicated_to_three_channels_is_mapped_once_and_stays_a_view():
    record = intensity_record([(np.broadcast_to(_stack(tissue(1)), (1, 96, 96, 3)), None)])
    wide = np.broadcast_to(_stack(compress(tissue(0))), (1, 96, 96, 3))
    mapped, note = match_intensity(wide, record)
    assert note and mapped.shape == (1, 96, 96, 3) and mapped.strides[-1] == 0


def test_segment_maps_the_input_and_says_so_in_the_notes():
    image, truth = square(64)
    record = intensity_record([(_stack(image), None)])
    wide = compress(image, grey=110)
    model = Spaced(intensity=record)
    result = run_segmentation(wide, model, device="cpu", tile_size=64)
    assert any("intensities mapped" in n for n in result.notes)
    assert "intensities mapped" in result.summary()
    np.testing.assert_array_equal(result.labels, truth)
    old = run_segmentation(wide, Spaced(), device="cpu", tile_size=64)  # no record
    assert not any("intensities" in n for n in old.notes)


def test_checkpoint_fields_round_trip_and_old_headers_still_load():
    record = intensity_record([(_stack(tissue(1)), None)])
    spec = ModelSpec(spacing=[0.7, 0.7], intensity=record)
    again = spec_from_header({"format_version": 1, "spec": spec.to_dict()}, _Path())
    assert again.spacing == [0.7, 0.7] and again.intensity == record
    old = spec.to_dict()
    del old["intensity"]
    old["spacing"] = None
    legacy = spec_from_header({"format_version": 1, "spec": old}, _Path())
    assert legacy.intensity is None and legacy.spacing is None


@pytest.mark.parametrize(
    "bad",
    [{"values": "x"}, {"percentiles": [1, 2], "values": [[1.0]]}, {"values": [[True]]}, [1]],
)
def test_a_malformed_record_is_refused(bad):
    with pytest.raises(ValueError, match="intensity"):
        check_record(bad)
    with pytest.raises(ValueError, match="intensity"):
        ModelSpec(intensity=bad)


class _Path:
    name = "model.safetensors"


def test_the_intensity_record_samples_a_bounded_number_of_pixels_for_many_pairs(monkeypatch):
    """200 training volumes must not each give a few million pixels (an out-of-memory
    kill on a 10 GB training set): the set shares one budget."""
    from napari_res101unet.preprocess import intensity

    seen = []
    real = intensity.landmarks
    monkeypatch.setattr(
        intensity, "landmarks", lambda s: seen.append(sum(len(v) for v in s)) or real(s)
    )
    volume = np.random.default_rng(0).integers(0, 255, (8, 256, 256, 1), dtype=np.uint8)
    record = intensity.intensity_record([(volume, None)] * 100)
    assert record is not None and len(record["values"]) == 1
    assert seen[0] <= 2 * intensity._SAMPLES  # 100 x 8 x 256 x 256 = 52 M pixels before


def _fitted_gain(image: np.ndarray, record: dict) -> float:
    lines = plan_match(_stack(image), record)
    assert lines is not None
    return lines[0][0]


def test_how_much_air_a_slice_shows_does_not_move_the_fitted_window():
    """The saturated floor (air) is left out of the landmarks: a slice with a tighter field
    of view than the training slices (little air), compressed to a third, gets a gain near
    3 back; matched on all pixels, as records of earlier versions are, it got about 6."""
    record = intensity_record([(_stack(tissue(1)), None), (_stack(tissue(2)), None)])
    assert record["saturated"] == "excluded"
    tight = tissue(0)[16:80, 16:80]  # the same anatomy, most of the air cropped away
    assert plan_match(_stack(tight), record) is None  # as it is: left alone
    assert abs(_fitted_gain(compress(tight), record) - 3.0) < 0.3
    old = {k: v for k, v in record.items() if k != "saturated"}
    old["values"] = landmarks([tissue(1).reshape(-1).astype(float)]).tolist()
    assert abs(_fitted_gain(compress(tight), old) - 3.0) > 1.5  # the air pulled it away


def test_a_record_of_an_earlier_version_is_matched_on_all_pixels():
    old = {"percentiles": list(PERCENTILES), "dtype": "uint8"}  # as earlier versions wrote
    old["values"] = landmarks([tissue(1).reshape(-1).astype(float)]).tolist()
    check_record(old)  # still valid
    mapped, note = match_intensity(_stack(compress(tissue(0))), old)
    assert "intensities mapped" in note
    assert abs(np.percentile(mapped, 90) - np.percentile(tissue(0), 90)) <= 10
    with pytest.raises(ValueError, match="saturated"):
        check_record({**old, "saturated": "sometimes"})
