"""Flatten every axis but the batch axis: ``(N, C, H, W) -> (N, C * H * W)``.

The order is C-order (row-major), the same as ``torch.flatten(x, 1)`` on a contiguous NCHW
tensor, so a following linear layer's weights line up with PyTorch's.
"""

from __future__ import annotations

import numpy as np

from reference._checks import check_float_array, check_shape

__all__ = ["flatten_forward", "flatten_backward"]


def flatten_forward(x: np.ndarray):
    """Flatten forward pass.

    Args:
        x: input, ``(N, d1, d2, ...)`` with at least 2 dimensions, e.g. ``(N, C, H, W)``.

    Returns:
        ``(out, cache)``: ``out`` of shape ``(N, d1 * d2 * ...)``; ``cache`` is ``x.shape``.
    """
    _check_forward(x)
    out = x.reshape(x.shape[0], -1)  # (N, C, H, W) -> (N, C*H*W)
    return out, x.shape


def flatten_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Flatten backward pass: reshape the gradient back.

    Args:
        dout: upstream gradient, ``(N, d1 * d2 * ...)``.
        cache: the input shape from :func:`flatten_forward`.

    Returns:
        ``dx`` of the input's shape, e.g. ``(N, C, H, W)``.
    """
    _check_backward(dout, cache)
    return dout.reshape(tuple(cache))  # (N, C*H*W) -> (N, C, H, W)


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by the functions above; a bad argument raises a ValueError that
# names the layer (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_forward(x) -> None:
    """``x`` must be a float32/float64 array with a batch axis and at least one more."""
    check_float_array("flatten", "x", x, "(N, ...) with at least 2 dimensions", range(2, 33))


def _check_backward(dout, cache: tuple) -> None:
    """``dout`` must be ``(N, D)``, the forward output's shape."""
    x_shape = tuple(cache)
    check_float_array("flatten_backward", "dout", dout, "(N, D)", (2,))
    check_shape("flatten_backward", "dout", dout, (x_shape[0], int(np.prod(x_shape[1:]))), "(N, D), the output's shape")
