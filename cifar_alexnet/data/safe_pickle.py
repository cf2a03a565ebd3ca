"""Unpickling a CIFAR-10 batch file without running code, in bounded memory and time.

The official batches are Python pickles, and an ordinary ``pickle.load`` runs whatever a file
asks for: it calls any function the file names (``os.system`` included), and even without a
single call a small file can cost any amount of memory and time. Pickles can refer back to an
object already built ("memo" references), so 60 KB of nested references describe a structure
of 2^60 elements that takes no room while it is shared -- until something walks it: NumPy
turning it into an array, ``repr`` putting it into a message, a ``dict`` hashing a key built of
it. A batch of 62 KB can ask for gigabytes and minutes that way, or for more memory than exists.

:func:`load_batch_pickle` therefore runs Python's own pure-Python unpickler with three kinds of
restriction, each checked before the work it guards:

* **Names.** Only the callables a batch needs can be looked up (:data:`ALLOWED_GLOBALS`), and
  each is replaced by a wrapper that accepts only the arguments NumPy's and Python's own
  pickles pass: ``_reconstruct`` of an empty array, ``dtype`` of a plain integer type,
  ``_frombuffer`` of the bytes that are in the file, ``_codecs.encode(text, "latin1")`` (how
  Python 3 writes ``bytes`` at protocol 2) and ``bytes()``. Nothing else is ever called.
* **Instructions.** The instructions that build objects of other classes, sets, or external
  references are refused; a dictionary key must be a string, bytes or an integer (a tuple key
  would be hashed, and its hash walks it); items go only into dictionaries and lists; an
  array's state is checked (integer type, its bytes all in the file) before it is set.
* **Size.** At most :data:`~cifar_alexnet.runtime.limits.MAX_PICKLE_OPCODES` instructions are
  run; each adds at most one object or one reference, so memory and time grow with that count
  and with the file's size, never beyond.

What the unpickler returns may still share references; the reader checks its types (a dict of
strings, a list of ints, a uint8 array) before it converts or prints anything, and quotes
values in messages with :func:`short_repr`, which stops after a few levels and items.
"""

from __future__ import annotations

import io
import math
import pickle
import reprlib
from typing import Any

import numpy as np

from cifar_alexnet.runtime.limits import MAX_PICKLE_OPCODES

__all__ = ["ALLOWED_GLOBALS", "PickleRefused", "load_batch_pickle", "short_repr"]


class PickleRefused(pickle.UnpicklingError):
    """The pickle asks for something a CIFAR-10 batch never needs; nothing it named was called."""


def _refuse(message: str) -> PickleRefused:
    return PickleRefused(message)


#: NumPy's own array-rebuilding functions (their module moved from ``numpy.core`` to ``numpy._core`` in NumPy 2).
_NUMPY_RECONSTRUCT = np.empty(0, np.uint8).__reduce__()[0]
_NUMPY_FROMBUFFER = np.empty(0, np.uint8).__reduce_ex__(5)[0]


class _NdarrayName:
    """What ``numpy.ndarray`` stands for inside a batch pickle: an argument of ``_reconstruct``, never a callable."""


_NDARRAY = _NdarrayName()


def _integer_dtype(dtype: Any) -> np.dtype:
    if (not isinstance(dtype, np.dtype) or dtype.kind not in "ui" or dtype.itemsize > 8 or dtype.fields is not None
            or dtype.subdtype):
        raise _refuse(f"it holds an array of type {short_repr(dtype)}; a batch holds integer arrays only")
    return dtype


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    """NumPy's ``_reconstruct`` of the empty array every array pickle starts from; its contents come with BUILD."""
    if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise _refuse(f"it calls _reconstruct{short_repr((cls, shape, typecode))}; NumPy's pickles pass (ndarray, (0,), "
                      "b'b')")
    return _NUMPY_RECONSTRUCT(np.ndarray, (0,), b"b")


def _dtype(name: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if not isinstance(name, str) or len(name) > 8:
        raise _refuse(f"it asks for dtype({short_repr(name)}); a batch's arrays have plain integer types such as 'u1'")
    try:
        return _integer_dtype(np.dtype(name))
    except TypeError:
        raise _refuse(f"it asks for dtype({short_repr(name)}), which is not a NumPy type") from None


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """NumPy's protocol-5 rebuild: an array over bytes that are in the file."""
    if not isinstance(buffer, (bytes, bytearray)) or order not in ("C", "F"):
        raise _refuse("it calls _frombuffer on something that is not bytes in the file")
    array = np.frombuffer(buffer, _integer_dtype(dtype))
    return array.reshape(_shape(shape, array.size), order=order)


def _shape(shape: Any, size: int) -> tuple[int, ...]:
    """``shape`` if it is a tuple of at most 4 sizes whose product is ``size``."""
    if (not isinstance(shape, tuple) or len(shape) > 4 or not all(type(n) is int and n >= 0 for n in shape)
            or math.prod(shape) != size):
        raise _refuse(f"it describes an array of shape {short_repr(shape)} for {size:,} values")
    return shape


def _codecs_encode(text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    """How Python 3 pickles ``bytes`` at protocols 0-2: ``_codecs.encode(text, "latin1")``."""
    if not isinstance(text, str) or encoding != "latin1" or errors != "strict":
        raise _refuse("it calls _codecs.encode other than as Python encodes bytes (text, 'latin1')")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """How Python 3 pickles ``b""`` at protocols 0-2: ``bytes()``."""
    if args:
        raise _refuse("it calls bytes() with arguments; Python's pickles call it without")
    return b""


#: ``(module, name)`` -> what a batch pickle gets when it names it.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # protocol 0-4 arrays, NumPy 1 (the official files)
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # ... NumPy 2
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # protocol 5 arrays
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _codecs_encode,  # bytes pickled by Python 3 at protocol 2
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}

#: Instructions that build objects of other classes, sets or external references.
_REFUSED_OPCODES = {
    pickle.INST: "INST", pickle.OBJ: "OBJ", pickle.NEWOBJ: "NEWOBJ", pickle.NEWOBJ_EX: "NEWOBJ_EX",
    pickle.EXT1: "EXT1", pickle.EXT2: "EXT2", pickle.EXT4: "EXT4", pickle.PERSID: "PERSID",
    pickle.BINPERSID: "BINPERSID", pickle.EMPTY_SET: "EMPTY_SET", pickle.ADDITEMS: "ADDITEMS",
    pickle.FROZENSET: "FROZENSET", pickle.NEXT_BUFFER: "NEXT_BUFFER", pickle.READONLY_BUFFER: "READONLY_BUFFER",
}


def _key(key: Any) -> Any:
    if type(key) not in (str, bytes, int):
        raise _refuse(f"it holds a dictionary key of type {type(key).__name__}; a batch's keys are strings")
    return key


class _BatchUnpickler(pickle._Unpickler):
    """Python's pure-Python unpickler, restricted to what a CIFAR-10 batch is made of (see the module)."""

    def __init__(self, file, **kwargs):
        super().__init__(file, **kwargs)
        self.opcodes_left = MAX_PICKLE_OPCODES

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _refuse(f"refusing to load global {module}.{name}: it is not one of the functions a batch is rebuilt "
                          "with (NumPy's array and type constructors), and it was not called") from None

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self._dict()[_key(key)] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self._dict()
        for i in range(0, len(items), 2):
            target[_key(items[i])] = items[i + 1]

    def load_dict(self):
        items = self.pop_mark()
        self.append({_key(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def load_append(self):
        value = self.stack.pop()
        self._list().append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._list().extend(items)

    def load_build(self):
        state, target = self.stack.pop(), self.stack[-1]
        if type(target) is np.ndarray:
            _check_array_state(state)
        elif isinstance(target, np.dtype):
            if not (isinstance(state, tuple) and len(state) == 8 and state[2:5] == (None, None, None)):
                raise _refuse(f"it gives a type the state {short_repr(state)}; a batch's types have no fields or sub-arrays")
        else:
            raise _refuse(f"it sets the state of a {type(target).__name__}; only arrays and their types have one")
        target.__setstate__(state)
        if isinstance(target, np.dtype):
            _integer_dtype(target)

    def _dict(self) -> dict:
        if type(self.stack[-1]) is not dict:
            raise _refuse(f"it adds dictionary items to a {type(self.stack[-1]).__name__}")
        return self.stack[-1]

    def _list(self) -> list:
        if type(self.stack[-1]) is not list:
            raise _refuse(f"it adds list items to a {type(self.stack[-1]).__name__}")
        return self.stack[-1]


def _check_array_state(state: Any) -> None:
    """``ndarray.__setstate__``'s argument: (version, shape, integer dtype, fortran, the bytes themselves)."""
    if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[4], (bytes, str))):
        raise _refuse(f"it gives an array the state {short_repr(state)}; NumPy's is (version, shape, dtype, fortran, "
                      "bytes)")
    itemsize, data = _integer_dtype(state[2]).itemsize, state[4]
    if len(data) % itemsize:
        raise _refuse(f"it describes an array of {itemsize}-byte values with {len(data):,} bytes of data")
    _shape(state[1], len(data) // itemsize)


def _counted(load):
    """A dispatch entry that first takes one instruction from the budget."""

    def run(self):
        self.opcodes_left -= 1
        if self.opcodes_left < 0:
            raise _refuse(f"it runs more than {MAX_PICKLE_OPCODES:,} pickle instructions (MAX_PICKLE_OPCODES in "
                          "cifar_alexnet/runtime/limits.py; an official batch has about 40,000)")
        return load(self)

    return run


def _refused_opcode(name: str):
    def refuse(self):
        raise _refuse(f"it uses the pickle instruction {name}, which builds objects a batch never holds")

    return refuse


_OVERRIDES = {pickle.SETITEM: _BatchUnpickler.load_setitem, pickle.SETITEMS: _BatchUnpickler.load_setitems,
              pickle.DICT: _BatchUnpickler.load_dict, pickle.APPEND: _BatchUnpickler.load_append,
              pickle.APPENDS: _BatchUnpickler.load_appends, pickle.BUILD: _BatchUnpickler.load_build}
_BatchUnpickler.dispatch = {
    code: _counted(_refused_opcode(_REFUSED_OPCODES[bytes([code])]) if bytes([code]) in _REFUSED_OPCODES
                   else _OVERRIDES.get(bytes([code]), load))
    for code, load in pickle._Unpickler.dispatch.items()
}


def load_batch_pickle(raw: bytes) -> Any:
    """Unpickle one batch file's bytes under the restrictions above.

    Byte strings of Python 2 pickles arrive as ``str`` (``encoding="latin1"``, NumPy's
    documented choice for them).

    Raises:
        PickleRefused: the pickle asks for something a batch never needs (nothing was called).
        Exception: a truncated or garbled pickle raises whatever the unpickler meets.
    """
    return _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()


class _ShortRepr(reprlib.Repr):
    """``reprlib`` with short limits, and byte strings and arrays described instead of printed whole."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict = 2, 4, 4, 4
        self.maxstring, self.maxother, self.maxlong = 40, 40, 40

    def repr_bytes(self, value: bytes, level: int) -> str:
        return repr(value[:30]) + ("..." if len(value) > 30 else "")

    def repr_bytearray(self, value: bytearray, level: int) -> str:
        return f"bytearray({self.repr_bytes(bytes(value[:31]), level)})"

    def repr_ndarray(self, value: np.ndarray, level: int) -> str:
        return f"array(dtype={value.dtype}, shape={value.shape})"


_SHORT = _ShortRepr()


def short_repr(value: Any) -> str:
    """``repr`` cut short after two levels and four items: safe for any unpickled value, however nested or shared."""
    return _SHORT.repr(value)
