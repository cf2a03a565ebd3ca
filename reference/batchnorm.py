"""Batch normalisation (PyTorch's ``BatchNorm1d`` / ``BatchNorm2d``), forward and backward.

One function handles both layouts; statistics are per channel ``C``:

* ``x: (N, C)`` -- after a linear layer (``BatchNorm1d``): averaged over the batch axis;
* ``x: (N, C, H, W)`` -- after a convolution (``BatchNorm2d``): averaged over the batch and
  the two spatial axes.

Write ``M`` for the number of values per channel (``N`` or ``N * H * W``).

Conventions (PyTorch's, written down once):

* **Training mode** normalises with the statistics of the current batch, using the
  *biased* variance (divide by ``M``)::

      x_hat = (x - mean) / sqrt(var_biased + eps),   out = gamma * x_hat + beta

* **Running statistics** are updated in training mode with the *unbiased* variance
  (divide by ``M - 1``), and ``momentum`` is the weight of the **new batch**::

      new_running_mean = (1 - momentum) * running_mean + momentum * mean
      new_running_var  = (1 - momentum) * running_var  + momentum * var_biased * M / (M - 1)

  (with the default ``momentum = 0.1`` the old estimate keeps 90 %). Training therefore
  needs ``M >= 2``, as in PyTorch.
* **Eval mode** normalises with ``running_mean`` / ``running_var`` and returns them
  unchanged; the layer is then an affine function of ``x``.

The functions never modify their arguments: the new running statistics are returned.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from reference._checks import check_float_array, check_same_dtype, check_shape

__all__ = ["BatchNormCache", "batchnorm_forward", "batchnorm_backward"]

_LAYER = "batchnorm"


class BatchNormCache(NamedTuple):
    """What the backward pass needs.

    Attributes:
        x_hat: the normalised input, shape of ``x``.
        gamma: the scale, ``(C,)``.
        inv_std: ``1 / sqrt(var + eps)`` per channel, ``(C,)`` (batch variance in training
            mode, running variance in eval mode).
        axes: the axes averaged over: ``(0,)`` or ``(0, 2, 3)``.
        training: which mode the forward pass ran in.
    """

    x_hat: np.ndarray
    gamma: np.ndarray
    inv_std: np.ndarray
    axes: tuple
    training: bool


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """Reshape a per-channel vector ``(C,)`` so it broadcasts against ``(N, C)`` or ``(N, C, H, W)``."""
    return v.reshape(-1, 1, 1) if ndim == 4 else v  # (C, 1, 1) or (C,)


def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Batch-norm forward pass for ``(N, C)`` or ``(N, C, H, W)`` input.

    Args:
        x: input, ``(N, C)`` or ``(N, C, H, W)``.
        gamma: scale, ``(C,)``.
        beta: shift, ``(C,)``.
        running_mean: running mean, ``(C,)``.
        running_var: running variance (unbiased estimates), ``(C,)``.
        training: ``True``: normalise with batch statistics and update the running ones;
            ``False``: normalise with the running statistics.
        momentum: weight of the new batch in the running-statistics update, in ``[0, 1]``.
        eps: added to the variance before the square root, ``> 0``.

    Returns:
        ``(out, cache, (new_running_mean, new_running_var))``: ``out`` has the shape and
        dtype of ``x``; the new running statistics are ``(C,)`` arrays (in eval mode the
        inputs, unchanged).

    Raises:
        ValueError: wrong ranks, shapes or dtypes, ``momentum`` outside ``[0, 1]``,
            ``eps <= 0``, or training with a single value per channel.
    """
    check_float_array(_LAYER, "x", x, "(N, C) or (N, C, H, W)", (2, 4))
    C = x.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        check_float_array(_LAYER, name, v, "(C,)", (1,))
        check_shape(_LAYER, name, v, (C,), f"(C,) with C = x.shape[1] for x of shape {x.shape}")
        check_same_dtype(_LAYER, name, v, x)
    if not isinstance(momentum, numbers.Real) or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{_LAYER}: momentum must be a number in [0, 1] (the new batch's weight), got {momentum!r}")
    if not isinstance(eps, numbers.Real) or not eps > 0:
        raise ValueError(f"{_LAYER}: eps must be a number > 0, got {eps!r}")

    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    values_per_channel = x.size // C if C else 0  # M = N or N * H * W

    if training:
        if values_per_channel < 2:
            raise ValueError(
                f"{_LAYER}: training mode needs more than one value per channel to estimate a variance, "
                f"got x of shape {x.shape}; use a batch of 2 or more, or training=False"
            )
        mean = x.mean(axis=axes)  # (C,)
        centred = x - _per_channel(mean, x.ndim)  # shape of x
        var = (centred * centred).mean(axis=axes)  # (C,), biased: divides by M
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(eps))  # (C,)
        x_hat = centred * _per_channel(inv_std, x.ndim)  # shape of x
        m = x.dtype.type(momentum)
        unbiased_var = var * x.dtype.type(values_per_channel / (values_per_channel - 1))  # (C,)
        new_running_mean = (1 - m) * running_mean + m * mean  # (C,)
        new_running_var = (1 - m) * running_var + m * unbiased_var  # (C,)
    else:
        inv_std = 1.0 / np.sqrt(running_var + x.dtype.type(eps))  # (C,)
        x_hat = (x - _per_channel(running_mean, x.ndim)) * _per_channel(inv_std, x.ndim)  # shape of x
        new_running_mean, new_running_var = running_mean, running_var

    out = _per_channel(gamma, x.ndim) * x_hat + _per_channel(beta, x.ndim)  # shape of x
    cache = BatchNormCache(x_hat, gamma, inv_std, axes, bool(training))
    return out, cache, (new_running_mean, new_running_var)


def batchnorm_backward(dout: np.ndarray, cache: BatchNormCache):
    """Batch-norm backward pass (both modes).

    ``dgamma = sum(dout * x_hat)`` and ``dbeta = sum(dout)`` over the averaged axes. For the
    input gradient write ``g = dout * gamma`` (the gradient w.r.t. ``x_hat``):

    * eval mode: ``x_hat`` is affine in ``x``, so ``dx = g * inv_std``;
    * training mode: the batch mean and variance depend on every ``x`` too, which gives
      (per channel, sums over the ``M`` values of the channel)::

          dx = inv_std / M * (M * g - sum(g) - x_hat * sum(g * x_hat))

    Args:
        dout: upstream gradient, the shape of the forward input (``(N, C)`` or ``(N, C, H, W)``).
        cache: from :func:`batchnorm_forward`.

    Returns:
        ``(dx, dgamma, dbeta)`` with shapes ``x.shape``, ``(C,)``, ``(C,)``.
    """
    x_hat, gamma, inv_std, axes, training = cache
    check_float_array(f"{_LAYER}_backward", "dout", dout, "(N, C) or (N, C, H, W)", (2, 4))
    check_shape(f"{_LAYER}_backward", "dout", dout, x_hat.shape, "the forward input's shape")
    check_same_dtype(f"{_LAYER}_backward", "dout", dout, x_hat, "x")
    ndim = dout.ndim

    dbeta = dout.sum(axis=axes)  # (C,)
    dgamma = (dout * x_hat).sum(axis=axes)  # (C,)
    g = dout * _per_channel(gamma, ndim)  # dL/dx_hat, shape of x
    if not training:
        dx = g * _per_channel(inv_std, ndim)  # shape of x
        return dx, dgamma, dbeta

    M = x_hat.size // x_hat.shape[1]  # values per channel
    sum_g = g.sum(axis=axes)  # (C,)
    sum_g_xhat = (g * x_hat).sum(axis=axes)  # (C,)
    dx = (M * g - _per_channel(sum_g, ndim) - x_hat * _per_channel(sum_g_xhat, ndim)) * _per_channel(
        inv_std / M, ndim
    )  # shape of x
    return dx, dgamma, dbeta
