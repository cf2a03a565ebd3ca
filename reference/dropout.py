"""Inverted dropout (PyTorch's ``nn.Dropout``).

Conventions:

* ``p`` is the probability of **dropping** (zeroing) an activation, as in PyTorch, so each
  value is kept with probability ``1 - p``; ``p`` must lie in ``[0, 1)``;
* "inverted": kept values are scaled up by ``1 / (1 - p)`` during training, so the expected
  output equals the input and eval mode is the identity (no rescaling at test time)::

      out = x * keep_mask / (1 - p)    (training)
      out = x                          (eval)

The randomness is explicit: pass a NumPy ``Generator`` (``rng``) to draw the keep-mask, or
the boolean keep-mask itself (``mask``), e.g. to reproduce the exact mask a PyTorch run used.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from reference._checks import check_float_array, check_shape

__all__ = ["DropoutCache", "dropout_forward", "dropout_backward"]

_LAYER = "dropout"


class DropoutCache(NamedTuple):
    """``scaled_mask = keep_mask / (1 - p)`` in the input's dtype (training), or ``None`` (eval)."""

    scaled_mask: np.ndarray | None
    x_shape: tuple


def dropout_forward(x: np.ndarray, p: float, *, training: bool, rng: np.random.Generator | None = None, mask=None):
    """Dropout forward pass.

    Args:
        x: input of any shape, e.g. ``(N, D)``.
        p: drop probability in ``[0, 1)``.
        training: ``False`` makes the layer the identity (``rng`` and ``mask`` unused).
        rng: draws the keep-mask in training mode: a value is kept when
            ``rng.random() >= p``. Give exactly one of ``rng`` and ``mask``.
        mask: boolean keep-mask of the shape of ``x`` (``True`` = keep).

    Returns:
        ``(out, cache)``: ``out`` has the shape and dtype of ``x``.

    Raises:
        ValueError: ``p`` outside ``[0, 1)``; in training mode: neither or both of ``rng``
            and ``mask``, a non-boolean mask or one of the wrong shape.
    """
    _check_forward(x, p, training, rng, mask)
    if not training:
        return x.copy(), DropoutCache(None, x.shape)

    if rng is not None:
        keep = rng.random(x.shape) >= p  # shape of x; True with probability 1 - p
    else:
        keep = mask  # the given keep-mask, shape of x
    scale = x.dtype.type(1.0 / (1.0 - p))
    scaled_mask = keep * scale  # shape of x, dtype of x: 0 or 1 / (1 - p)
    return x * scaled_mask, DropoutCache(scaled_mask, x.shape)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Dropout backward pass: the same mask and scale as the forward pass.

    Args:
        dout: upstream gradient, the shape of ``x``.
        cache: from :func:`dropout_forward`.

    Returns:
        ``dx = dout * keep_mask / (1 - p)`` (training) or ``dout`` (eval), shape of ``x``.
    """
    _check_backward(dout, cache)
    if cache.scaled_mask is None:
        return dout.copy()
    return dout * cache.scaled_mask


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by the functions above; a bad argument raises a ValueError that
# names the layer (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_forward(x, p, training, rng, mask) -> None:
    """``x`` a float array, ``p`` in ``[0, 1)``; in training mode exactly one of ``rng`` and ``mask``, well formed."""
    check_float_array(_LAYER, "x", x, "(N, ...)", range(1, 33))
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
        raise ValueError(f"{_LAYER}: p is the drop probability and must be in [0, 1), got {p!r}")
    if not training:
        return  # the identity: rng and mask are not used
    if (rng is None) == (mask is None):
        raise ValueError(
            f"{_LAYER}: in training mode give exactly one of rng (np.random.Generator) or mask "
            f"(boolean keep-mask of shape {x.shape}), got {'both' if rng is not None else 'neither'}"
        )
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise ValueError(f"{_LAYER}: rng must be a np.random.Generator (np.random.default_rng(seed)), got {rng!r}")
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise ValueError(
                f"{_LAYER}: mask must be a boolean NumPy keep-mask of shape {x.shape} (True = keep), "
                f"got {type(mask).__name__} of dtype {getattr(mask, 'dtype', None)}"
            )
        check_shape(_LAYER, "mask", mask, x.shape, "the shape of x")


def _check_backward(dout, cache: DropoutCache) -> None:
    """``dout`` must be a float array of the forward input's shape."""
    check_float_array(f"{_LAYER}_backward", "dout", dout, "(N, ...)", range(1, 33))
    check_shape(f"{_LAYER}_backward", "dout", dout, cache.x_shape, "the forward input's shape")
