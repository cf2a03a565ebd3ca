"""Rectified linear unit: ``out = max(x, 0)`` elementwise, any shape.

Gradient convention (PyTorch's): the derivative at exactly ``x == 0`` is taken as 0, so
``dx = dout * (x > 0)``.
"""

from __future__ import annotations

import numpy as np

from reference._checks import check_float_array, check_shape

__all__ = ["relu_forward", "relu_backward"]


def relu_forward(x: np.ndarray):
    """ReLU forward pass.

    Args:
        x: input of any shape, e.g. ``(N, C, H, W)`` or ``(N, D)``.

    Returns:
        ``(out, cache)``: ``out = max(x, 0)`` with the shape and dtype of ``x``; ``cache``
        is the boolean mask ``x > 0`` (shape of ``x``).
    """
    _check_forward(x)
    positive = x > 0  # shape of x
    out = np.where(positive, x, x.dtype.type(0))  # shape of x
    return out, positive


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """ReLU backward pass.

    Args:
        dout: upstream gradient, the shape of the forward input.
        cache: the mask ``x > 0`` from :func:`relu_forward`.

    Returns:
        ``dx = dout * (x > 0)``, the shape of ``x``.
    """
    _check_backward(dout, cache)
    return np.where(cache, dout, dout.dtype.type(0))  # shape of x


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by the functions above; a bad argument raises a ValueError that
# names the layer (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_forward(x) -> None:
    """``x`` must be a float32/float64 array with a batch axis."""
    check_float_array("relu", "x", x, "(N, ...)", range(1, 33))


def _check_backward(dout, cache: np.ndarray) -> None:
    """``dout`` must be a float array of the forward input's shape."""
    check_float_array("relu_backward", "dout", dout, "(N, ...)", range(1, 33))
    check_shape("relu_backward", "dout", dout, cache.shape, "the forward input's shape")
