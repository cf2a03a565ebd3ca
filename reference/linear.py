"""Fully connected (affine) layer, PyTorch's ``nn.Linear``: ``out = x @ w.T + b``.

The weight has PyTorch's layout ``(out_features, in_features)`` -- one row per output --
so a state_dict's ``weight`` can be used as it is. Inputs with image axes must be
flattened first (:mod:`reference.flatten`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference._checks import check_float_array, check_same_dtype, check_shape

__all__ = ["LinearCache", "linear_forward", "linear_backward"]

_LAYER = "linear"


class LinearCache(NamedTuple):
    """``x: (N, D_in)`` and ``w: (D_out, D_in)`` from the forward pass."""

    x: np.ndarray
    w: np.ndarray


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray):
    """Linear layer forward pass.

    Args:
        x: input, ``(N, D_in)``.
        w: weight, ``(D_out, D_in)`` (PyTorch layout).
        b: bias, ``(D_out,)``.

    Returns:
        ``(out, cache)``: ``out = x @ w.T + b`` of shape ``(N, D_out)`` and dtype ``x.dtype``.

    Raises:
        ValueError: wrong ranks or dtypes, or ``x``'s features do not match ``w``'s columns.
    """
    _check_forward(x, w, b)
    out = x @ w.T + b  # (N, D_in) @ (D_in, D_out) + (D_out,) -> (N, D_out)
    return out, LinearCache(x, w)


def linear_backward(dout: np.ndarray, cache: LinearCache):
    """Linear layer backward pass.

    Args:
        dout: upstream gradient, ``(N, D_out)``.
        cache: from :func:`linear_forward`.

    Returns:
        ``(dx, dw, db)``: ``dx = dout @ w`` ``(N, D_in)``, ``dw = dout.T @ x``
        ``(D_out, D_in)``, ``db = dout.sum(0)`` ``(D_out,)``.
    """
    _check_backward(dout, cache)
    x, w = cache
    dx = dout @ w  # (N, D_out) @ (D_out, D_in) -> (N, D_in)
    dw = dout.T @ x  # (D_out, N) @ (N, D_in) -> (D_out, D_in)
    db = dout.sum(axis=0, dtype=np.float64).astype(dout.dtype)  # (D_out,), summed in float64
    return dx, dw, db


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by the functions above; a bad argument raises a ValueError that
# names the layer (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_forward(x, w, b) -> None:
    """Ranks, dtypes and matching sizes of :func:`linear_forward`'s arguments."""
    check_float_array(_LAYER, "x", x, "(N, D_in)", (2,))
    check_float_array(_LAYER, "w", w, "(D_out, D_in)", (2,))
    check_float_array(_LAYER, "b", b, "(D_out,)", (1,))
    check_same_dtype(_LAYER, "w", w, x)
    check_same_dtype(_LAYER, "b", b, x)
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"{_LAYER}: x has D_in = {x.shape[1]} features (x: (N, D_in) = {x.shape}) but w has "
            f"{w.shape[1]} columns (w: (D_out, D_in) = {w.shape}); w must have shape (D_out, {x.shape[1]})"
        )
    check_shape(_LAYER, "b", b, (w.shape[0],), "(D_out,) (one bias per output)")


def _check_backward(dout, cache: LinearCache) -> None:
    """``dout`` must be the forward output's shape ``(N, D_out)`` and dtype."""
    x, w = cache
    check_float_array(f"{_LAYER}_backward", "dout", dout, "(N, D_out)", (2,))
    check_shape(f"{_LAYER}_backward", "dout", dout, (x.shape[0], w.shape[0]), "(N, D_out)")
    check_same_dtype(f"{_LAYER}_backward", "dout", dout, x)
