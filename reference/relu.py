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
    check_float_array("relu", "x", x, "(N, ...)", range(1, 33))
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
    check_float_array("relu_backward", "dout", dout, "(N, ...)", range(1, 33))
    check_shape("relu_backward", "dout", dout, cache.shape, "the forward input's shape")
    return np.where(cache, dout, dout.dtype.type(0))
