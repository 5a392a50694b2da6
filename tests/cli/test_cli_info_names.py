"""``info`` prints names with control characters escaped (issue 24, item 17): a model file
name can hold terminal escape sequences (clear the screen, set the title, move the
cursor) or bidirectional overrides; none reaches the terminal raw."""

from __future__ import annotations

from napari_res101unet import save_model
from napari_res101unet.cli import main
from napari_res101unet.cli.info import printable

EVIL = "x\x1b[2J\x1b]0;pwned\x07\x9b1A\u202egpj.exe"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def test_printable_escapes_control_and_format_characters():
    assert printable(EVIL) == "x\\x1b[2J\\x1b]0;pwned\\x07\\x9b1A\\u202egpj.exe"
    assert printable("liver (µm) ü 肝") == "liver (µm) ü 肝"
    assert printable("a\nb\tc") == "a\\nb\\tc"


def test_info_lists_hostile_model_names_escaped(small_model, _isolated_model_folder, capsys):
    (_isolated_model_folder / f"{EVIL}.safetensors").write_bytes(b"not a model")
    save_model(small_model, _isolated_model_folder / f"ok{EVIL}.safetensors")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in RAW), repr(out)
    assert "x\\x1b[2J\\x1b]0;pwned\\x07" in out and "unreadable" in out
    assert main(["info", str(_isolated_model_folder / f"ok{EVIL}.safetensors")]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in RAW), repr(out)
