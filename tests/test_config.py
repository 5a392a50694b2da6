"""Settings: one validated source of defaults for the API, the CLI and the widgets."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import napari_res101unet as nr
from napari_res101unet.cli import build_parser
from napari_res101unet.config import (
    SEGMENT_DEFAULTS,
    SPARSE_IGNORE,
    TRAIN_DEFAULTS,
    SegmentSettings,
    TrainSettings,
)


def test_settings_are_frozen_and_replace_validates():
    s = TrainSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.epochs = 3  # type: ignore[misc]
    assert dataclasses.replace(s, epochs=3).epochs == 3
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        dataclasses.replace(s, epochs=0)
    with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
        dataclasses.replace(SegmentSettings(), threshold=1.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"patch_size": 100}, ValueError, "multiple of 32.*use 96 or 128"),
        ({"learning_rate": 0}, ValueError, "learning_rate must be a number in \\(0.0, 1.0\\]"),
        ({"augment": 1}, TypeError, "augment must be True or False"),
        ({"ignore_index": 2.5}, TypeError, "ignore_index must be an int"),
        ({"sparse": True, "ignore_index": 7}, ValueError, "cannot be given as well"),
        ({"max_minutes": float("nan")}, ValueError, "max_minutes must be a number"),
    ],
)
def test_bad_train_settings_name_the_value(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainSettings(**kwargs)


def test_zero_patience_means_never_and_sparse_ignores_255():
    assert TrainSettings(early_stopping=0).early_stopping is None
    assert TrainSettings(sparse=True).label_ignore == SPARSE_IGNORE
    assert TrainSettings(ignore_index=9).label_ignore == 9


def test_api_defaults_come_from_the_settings():
    """Entry points take a settings object whole, or its fields as keywords; none restates a
    field (so no default is written twice) and the defaults they use are the dataclass's."""
    from napari_res101unet.config import RefineSettings, settings_with
    from napari_res101unet.inference.blockwise import segment_blocks

    entries = ((nr.train, TrainSettings), (nr.run_segmentation, SegmentSettings),
               (nr.segment, SegmentSettings), (nr.evaluate, SegmentSettings),
               (nr.refine, RefineSettings), (segment_blocks, SegmentSettings))  # fmt: skip
    for fn, cls in entries:
        params = inspect.signature(fn).parameters
        assert params["settings"].default is None, fn.__name__
        assert any(p.kind is p.VAR_KEYWORD for p in params.values()), fn.__name__
        assert not {f.name for f in dataclasses.fields(cls)} & set(params), fn.__name__
    for f in dataclasses.fields(TrainSettings):
        assert getattr(settings_with(TrainSettings), f.name) == f.default, f.name
    for f in dataclasses.fields(SegmentSettings):
        assert getattr(settings_with(SegmentSettings), f.name) == f.default, f.name
    assert dict(TRAIN_DEFAULTS) == TrainSettings().as_dict()
    assert dict(SEGMENT_DEFAULTS) == SegmentSettings().as_dict()


def _subparser(name):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices[name]


def test_cli_options_and_help_come_from_the_settings():
    train = _subparser("train")
    args = train.parse_args(["--images", "i", "--masks", "m", "-o", "x"])
    for f in dataclasses.fields(TrainSettings):
        assert getattr(args, f.name) == f.default, f.name
    text = train.format_help()
    assert "epochs (30)" in text and "--no-augment" in text and "--sparse" in text
    assert "(no limit)" in text  # max_minutes
    args = train.parse_args(["--images", "i", "--masks", "m", "-o", "x", "--sparse"])
    assert args.sparse is True
    segment = _subparser("segment")
    args = segment.parse_args(["a.png", "-m", "untrained", "-o", "out"])
    assert args.overlap == SegmentSettings().overlap and args.tile_size is None
    assert "fraction of a tile shared (0.25)" in segment.format_help()
