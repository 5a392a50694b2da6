"""The engine reply unpickler refuses object arrays whatever path builds them (issue 24,
item 13): ``ndarray((3,), 'O')``, ``_reconstruct`` + ``__setstate__``, a dtype made
``hasobject`` by BUILD, pointers forged in raw bytes, and a builtin dtype mutated in
place. The payloads are hand-written opcodes; they run in a child process, so a payload
that crashes numpy fails the test instead of killing the test runner."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import napari_res101unet
from napari_res101unet.engine import protocol as P

SRC = Path(napari_res101unet.__file__).resolve().parents[1]


def G(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def U(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def I4(value: int) -> bytes:
    return b"J" + value.to_bytes(4, "little", signed=True)


def dtype(code: str, copy: bool = True) -> bytes:
    return G("numpy", "dtype") + b"(" + U(code) + b"\x89" + (b"\x88" if copy else b"\x89") + b"tR"


def build_flags(flags: int, size: int = 8) -> bytes:
    """BUILD state of a void dtype with the given flags (63 = an object dtype's)."""
    return b"(K\x03" + U("|") + b"NNN" + I4(size) + I4(1) + b"K" + bytes([flags]) + b"tb"


HASOBJECT_DTYPE = dtype("V8") + build_flags(63)
RECONSTRUCT = G("numpy._core.multiarray", "_reconstruct") + G("numpy", "ndarray")
EMPTY = RECONSTRUCT + b"K\x00\x85C\x01b\x87R"

PAYLOADS = {
    "ndarray((3,), 'O')": G("numpy", "ndarray") + b"(K\x03\x85" + U("O") + b"tR",
    "ndarray.__new__ via NEWOBJ": G("numpy", "ndarray") + b"K\x03\x85" + U("O") + b"\x86\x81",
    "_reconstruct with typecode 'O'": RECONSTRUCT + b"K\x00\x85C\x01O\x87R",
    "dtype made hasobject by BUILD": HASOBJECT_DTYPE,
    "_reconstruct + __setstate__ with a list": EMPTY
    + b"(K\x01K\x03\x85" + HASOBJECT_DTYPE + b"\x89](K\x01" + U("x") + b"Netb",
    "_reconstruct + __setstate__ with forged pointers": EMPTY
    + b"(K\x01K\x01\x85" + HASOBJECT_DTYPE + b"\x89C\x08" + b"\x41" * 8 + b"tb",
    "builtin float64 dtype mutated by BUILD": dtype("f8", copy=False) + build_flags(63),
    "a plain array's dtype made hasobject after use": dtype("V8") + b"q\x00"
    + EMPTY + b"(K\x01K\x01\x85h\x00\x89C\x08" + b"\x41" * 8 + b"tb" + b"0h\x00"
    + build_flags(63),
    "a dtype's state set twice": dtype("V8") + build_flags(0) + build_flags(0),
    "scalar of a dtype made hasobject": G("numpy._core.multiarray", "scalar")
    + HASOBJECT_DTYPE + b"C\x08" + b"\x41" * 8 + b"\x86R",
    "_frombuffer of a dtype made hasobject": G("numpy._core.numeric", "_frombuffer")
    + b"(C\x08" + b"\x41" * 8 + HASOBJECT_DTYPE + b"K\x01\x85" + U("C") + b"tR",
}  # fmt: skip

_CHILD = """
import json, pickle, sys
from napari_res101unet.engine.protocol import safe_loads
out = {}
for name, hexdata in json.loads(sys.stdin.read()).items():
    try:
        value = safe_loads(bytes.fromhex(hexdata))
        out[name] = ["admitted", type(value).__name__]
    except pickle.UnpicklingError as exc:
        out[name] = ["refused", str(exc)]
    except Exception as exc:
        out[name] = ["other", f"{type(exc).__name__}: {exc}"]
import numpy as np
out["float64 intact"] = ["ok" if not np.dtype("f8").hasobject else "mutated", ""]
print(json.dumps(out))
"""


def test_object_arrays_are_refused_whatever_builds_them():
    payloads = {name: (b"\x80\x02" + body + b".").hex() for name, body in PAYLOADS.items()}
    env = dict(os.environ, PYTHONPATH=str(SRC))
    run = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(payloads), env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, f"the unpickler crashed the process: {run.stderr[-2000:]}"
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert results.pop("float64 intact")[0] == "ok"
    admitted = {name: r for name, r in results.items() if r[0] != "refused"}
    assert not admitted, admitted


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_structured_and_datetime_arrays_still_come_back(protocol):
    arrays = {
        "structured": np.zeros(3, dtype=[("a", "f4"), ("b", "i2")]),
        "datetime": np.array(["2024-01-01"], dtype="M8[D]"),
        "unicode": np.array(["ab", "c"]),
        "bytes": np.array([b"ab"]),
        "scalar": np.float32(1.5),
    }
    if protocol == 2:  # protocol 2 needs _codecs.encode, which is not plain data
        with pytest.raises(pickle.UnpicklingError):
            P.safe_loads(pickle.dumps(arrays, protocol=protocol))
        return
    back = P.safe_loads(pickle.dumps(P.result(1, arrays), protocol=protocol))["value"]
    for name, arr in arrays.items():
        assert np.asarray(back[name]).dtype == np.asarray(arr).dtype
        assert np.array_equal(back[name], arr), name
