"""An unpickler that admits plain data only: the engine's replies, read in napari's process.

Admitted: dict, list, tuple, str, bytes, numbers, bool, None, sets, complex numbers,
bytearrays, and numpy arrays, scalars and dtypes whose items are numbers, booleans,
strings, bytes or dates (structured too). Refused: every other global, and every way a
pickle can make numpy hold Python objects or pointers: an object dtype, ``ndarray(...,
'O')`` called directly or through ``__new__``, ``_reconstruct`` with an object
typecode, ``__setstate__`` with a list, and a dtype whose state (BUILD) carries the
object flags, even when the dtype was first used plain. It subclasses Python's own
unpickler (``pickle._Unpickler``) so that REDUCE, BUILD and NEWOBJ can be checked
before they run; the C unpickler cannot be hooked there.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, ClassVar

import numpy as np

_PLAIN_BUILTINS = frozenset({"set", "frozenset", "complex", "bytearray"})
_OBJECT_FLAGS = 0x01 | 0x02 | 0x04  # NPY_ITEM_HASOBJECT, NPY_LIST_PICKLE, NPY_ITEM_IS_POINTER
_CORE = ("numpy.core", "numpy._core")


def _refuse(what: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f"the engine sent {what}; only plain data is accepted")


def _check_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)
    if dtype.hasobject or dtype.flags & _OBJECT_FLAGS:
        raise _refuse("an array of Python objects")
    return dtype


def plain_dtype(obj: Any, align: bool = False, copy: bool = True) -> np.dtype:
    """``numpy.dtype`` for plain items; always a new instance (a builtin dtype, shared by
    the whole process, must never be the target of a BUILD)."""
    return _check_dtype(np.dtype(_check_dtype(obj), bool(align), True))


def plain_reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise _refuse(f"an array of type {getattr(subtype, '__name__', subtype)!r}")
    code = typecode.decode("latin1") if isinstance(typecode, bytes) else typecode
    return np.ndarray.__new__(np.ndarray, shape, _check_dtype(code))


def plain_scalar(dtype: Any, *args: Any) -> Any:
    from numpy._core.multiarray import scalar

    if not isinstance(dtype, np.dtype) or (args and not isinstance(args[0], bytes)):
        raise _refuse("a numpy scalar that is not plain data")
    return scalar(_check_dtype(dtype), *args)


def plain_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    from numpy._core.numeric import _frombuffer

    if not isinstance(buffer, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        raise _refuse("an array whose data is not a byte buffer")
    return _frombuffer(buffer, _check_dtype(dtype), shape, order)


_NUMPY = {
    ("numpy", "dtype"): plain_dtype,
    ("numpy", "ndarray"): np.ndarray,  # an argument of _reconstruct, never called
    **{(f"{core}.multiarray", "_reconstruct"): plain_reconstruct for core in _CORE},
    **{(f"{core}.multiarray", "scalar"): plain_scalar for core in _CORE},
    **{(f"{core}.numeric", "_frombuffer"): plain_frombuffer for core in _CORE},
}
_CALLABLE = {
    set,
    frozenset,
    complex,
    bytearray,
    *(f for f in _NUMPY.values() if f is not np.ndarray),
}


def _check_dtype_state(state: Any) -> None:
    """A dtype's BUILD state: ``(version, order, subarray, names, fields, size, align,
    flags[, metadata])``; the flags and every sub-dtype must be plain."""
    if not isinstance(state, tuple) or len(state) < 8 or not isinstance(state[7], int):
        raise _refuse("a dtype state that numpy does not write")
    if state[7] & _OBJECT_FLAGS:
        raise _refuse("a dtype made to hold Python objects")
    subarray, fields = state[2], state[4]
    if subarray is not None:
        _check_dtype(subarray[0])
    for value in (fields or {}).values():
        _check_dtype(value[0])


def _check_array_state(state: Any) -> None:
    """An array's BUILD state: ``(version, shape, dtype, is_fortran, raw bytes)``."""
    if not isinstance(state, tuple) or len(state) != 5:
        raise _refuse("an array state that numpy does not write")
    _check_dtype(state[2])
    if not isinstance(state[4], (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        raise _refuse("an array whose data is not a byte buffer (a list of objects?)")


class PlainUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """See the module notes."""

    dispatch: ClassVar[dict] = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file: Any) -> None:
        super().__init__(file)
        self._built: set[int] = set()

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _PLAIN_BUILTINS:
            return super().find_class(module, name)
        if (module, name) in _NUMPY:
            return _NUMPY[(module, name)]
        raise _refuse(f"a {module}.{name} object")

    def load_reduce(self) -> None:
        if self.stack[-2] not in _CALLABLE:
            raise _refuse(f"a call of {getattr(self.stack[-2], '__name__', 'an object')}")
        super().load_reduce()

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if id(inst) in self._built:
            raise _refuse("an object whose state is set twice")
        if isinstance(inst, np.dtype):
            _check_dtype_state(state)
        elif isinstance(inst, np.ndarray) and type(inst) is np.ndarray:
            _check_array_state(state)
        else:
            raise _refuse(f"state for a {type(inst).__name__}")
        self._built.add(id(inst))
        super().load_build()
        _check_dtype(inst if isinstance(inst, np.dtype) else inst.dtype)

    def load_newobj(self) -> None:
        raise _refuse("an object built by __new__")

    def load_newobj_ex(self) -> None:
        raise _refuse("an object built by __new__")

    def load_inst(self) -> None:
        raise _refuse("a class instance")

    def load_obj(self) -> None:
        raise _refuse("a class instance")


for _op, _load in (
    (pickle.REDUCE, PlainUnpickler.load_reduce),
    (pickle.BUILD, PlainUnpickler.load_build),
    (pickle.NEWOBJ, PlainUnpickler.load_newobj),
    (pickle.NEWOBJ_EX, PlainUnpickler.load_newobj_ex),
    (pickle.INST, PlainUnpickler.load_inst),
    (pickle.OBJ, PlainUnpickler.load_obj),
):
    PlainUnpickler.dispatch[_op[0]] = _load


def plain_loads(data: bytes) -> Any:
    """Unpickle ``data``, refusing anything but plain data (``pickle.UnpicklingError``)."""
    try:
        return PlainUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # a malformed or hostile stream: say so, in one kind
        raise pickle.UnpicklingError(
            f"the engine's reply is not plain data ({type(exc).__name__}: {exc})"
        ) from None
