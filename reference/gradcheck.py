"""Numeric gradients by central differences, to check the analytic backward passes.

For a function ``f`` and an upstream gradient ``dout`` (the shape of ``f(x)``), the
gradient of the scalar ``L(x) = sum(f(x) * dout)`` with respect to one entry of ``x`` is
approximated by::

    dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2 h)

whose error is ``O(h**2)`` for smooth ``f``. This is exactly what a backward pass computes
from ``dout``, so comparing the two checks the backward pass. Use float64 (in float32 the
rounding error ``~1e-7 / h`` swamps the result) and keep ``x`` small: it costs two calls of
``f`` per entry of ``x``. Near a kink (ReLU at 0, a tie in max-pooling) the difference
quotient straddles the kink and is meaningless, so test inputs should keep away from them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["numeric_gradient"]


def numeric_gradient(
    f: Callable[[np.ndarray], np.ndarray | float],
    x: np.ndarray,
    dout: np.ndarray | None = None,
    h: float = 1e-6,
) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * dout)`` (or of scalar ``f(x)``) w.r.t. ``x``.

    ``x`` is perturbed in place, one entry at a time, and restored afterwards, so ``f`` may
    close over other arrays and read ``x`` through them too.

    Args:
        f: maps ``x`` to an array (the shape of ``dout``) or, with ``dout=None``, to a scalar.
        x: the point, float64, any shape.
        dout: upstream gradient, the shape of ``f(x)``; ``None`` when ``f`` returns a scalar.
        h: step size.

    Returns:
        The numeric gradient, the shape of ``x``, float64.

    Raises:
        ValueError: ``x`` is not a float64 array, or ``f(x)`` does not match ``dout``.
    """
    _check_point(x)

    def objective() -> float:  # L(x) = sum(f(x) * dout), or f(x) itself
        value = f(x)
        _check_value(value, dout)
        if dout is None:
            return float(value)
        return float(np.sum(np.asarray(value, dtype=np.float64) * dout))

    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        plus = objective()
        x[index] = original - h
        minus = objective()
        x[index] = original  # restore
        grad[index] = (plus - minus) / (2 * h)
    return grad


# ----------------------------------------------------------------------------------------------
# Argument checks, called by numeric_gradient; a bad argument raises a ValueError that starts
# with "numeric_gradient:".
# ----------------------------------------------------------------------------------------------


def _check_point(x) -> None:
    """``x`` must be a float64 array: in float32 the rounding error swamps the difference quotient."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ValueError(
            f"numeric_gradient: x must be a float64 NumPy array, got {getattr(x, 'dtype', type(x).__name__)}; "
            "central differences are meaningless in float32"
        )


def _check_value(value, dout) -> None:
    """``f(x)`` must be a scalar (no ``dout``) or have ``dout``'s shape."""
    if dout is None:
        if np.ndim(value) != 0:
            raise ValueError(f"numeric_gradient: f(x) has shape {np.shape(value)}; pass dout or return a scalar")
    elif np.shape(value) != dout.shape:
        raise ValueError(f"numeric_gradient: f(x) has shape {np.shape(value)} but dout has {dout.shape}")
