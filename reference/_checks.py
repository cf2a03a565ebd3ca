"""Input validation shared by the layers of :mod:`reference`.

Every layer checks its inputs before computing anything, and a bad input raises a
:class:`ValueError` whose message starts with the layer's name (``"conv2d: ..."``) and says
what was expected, e.g.::

    conv2d: x must have shape (N, C, H, W) (4 dimensions), got shape (3, 32, 32);
    add a batch axis with x[None]

NumPy would otherwise broadcast many of these mistakes silently (a bias of the wrong
length, a (C,) gamma against an (N, C, H, W) input, ...), which is exactly the kind of bug a
reference implementation must not hide. The layers never change a dtype, so the parameters
of a layer must have the dtype of its input: a float64 weight with a float32 input is an
error, not a silent up-cast.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

#: Floating-point dtypes the layers accept (NumPy computes in the input's dtype).
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_array(layer: str, name: str, a, shape_text: str, ndims: Sequence[int]) -> np.ndarray:
    """Check that ``a`` is a float32/float64 ndarray with one of the ranks in ``ndims``.

    Args:
        layer: the layer's name, the first word of any error message.
        name: the argument's name (``"x"``, ``"w"``, ...).
        a: the value to check.
        shape_text: the expected shape in words, e.g. ``"(N, C, H, W)"``.
        ndims: the accepted numbers of dimensions.

    Returns:
        ``a`` itself (never a copy).

    Raises:
        ValueError: ``a`` is not a NumPy array, not float32/float64, or has the wrong rank.
    """
    if not isinstance(a, np.ndarray):
        raise ValueError(
            f"{layer}: {name} must be a NumPy array of shape {shape_text}, got {type(a).__name__}; "
            f"convert it with np.asarray({name}, dtype=np.float32) (or float64)"
        )
    if a.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"{layer}: {name} must be float32 or float64 with shape {shape_text}, got dtype {a.dtype}; "
            f"convert it with {name}.astype(np.float32) (or float64)"
        )
    if a.ndim not in ndims:
        ranks = f"at least {ndims.start}" if isinstance(ndims, range) else " or ".join(str(n) for n in ndims)
        raise ValueError(
            f"{layer}: {name} must have shape {shape_text} ({ranks} dimensions), "
            f"got shape {a.shape} ({a.ndim} dimensions)"
        )
    return a


def check_shape(layer: str, name: str, a: np.ndarray, expected: tuple, shape_text: str) -> None:
    """Check ``a.shape == expected`` exactly (no broadcasting).

    Args:
        layer: the layer's name.
        name: the argument's name.
        a: the array to check.
        expected: the required shape.
        shape_text: the expected shape in words, e.g. ``"(F,) = (number of filters,)"``.

    Raises:
        ValueError: the shapes differ.
    """
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{layer}: {name} must have shape {shape_text} = {tuple(expected)}, got {tuple(a.shape)}")


def check_same_dtype(layer: str, name: str, a: np.ndarray, reference: np.ndarray, reference_name: str = "x") -> None:
    """Check that ``a`` has the dtype of ``reference`` (the layers never up-cast silently).

    Raises:
        ValueError: the dtypes differ.
    """
    if a.dtype != reference.dtype:
        raise ValueError(
            f"{layer}: {name} has dtype {a.dtype} but {reference_name} has dtype {reference.dtype}; "
            f"the layers keep one dtype, convert with {name}.astype({reference_name}.dtype)"
        )


def check_positive_int(layer: str, name: str, value) -> int:
    """Check that ``value`` is an integer >= 1 (``bool`` is rejected) and return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{layer}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_nonnegative_int(layer: str, name: str, value) -> int:
    """Check that ``value`` is an integer >= 0 (``bool`` is rejected) and return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{layer}: {name} must be an integer >= 0, got {value!r}")
    return int(value)


def int_pair(layer: str, name: str, value, *, minimum: int) -> tuple[int, int]:
    """Turn an int or a pair of ints into ``(vertical, horizontal)``, each ``>= minimum``.

    Args:
        layer: the layer's name.
        name: the argument's name (``"stride"``, ``"padding"``, ``"kernel"``).
        value: ``k`` (meaning ``(k, k)``) or ``(kh, kw)``.
        minimum: 1 for strides and kernels, 0 for padding.

    Returns:
        ``(value_h, value_w)`` as Python ints.

    Raises:
        ValueError: not an int or a pair of ints, or smaller than ``minimum``.
    """
    check = check_positive_int if minimum == 1 else check_nonnegative_int
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{layer}: {name} must be an int or a pair (vertical, horizontal), got {value!r}")
        return check(layer, name, value[0]), check(layer, name, value[1])
    single = check(layer, name, value)
    return single, single
