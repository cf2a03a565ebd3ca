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

Precision: elementwise work is done in the input's dtype. The per-channel reductions (mean,
variance, and in the backward pass ``sum(dout)`` and ``sum(dout * x_hat)``, the latter from
``x`` and the float64 statistics rather than from the rounded ``x_hat``) accumulate in
float64 and are rounded once. In float32 these sums can cancel almost completely (a
channel's ``sum(dout * x_hat)`` is often near zero), and a float32 accumulation would then
keep few correct digits; PyTorch's CPU kernels accumulate the statistics in double too.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from reference._checks import check_float_array, check_same_dtype, check_shape

__all__ = ["BatchNormCache", "batchnorm_forward", "batchnorm_backward", "batchnorm_train_forward_loop",
           "batchnorm_train_backward_loop"]

_LAYER = "batchnorm"


class BatchNormCache(NamedTuple):
    """What the backward pass needs.

    Attributes:
        x: the input, ``(N, C)`` or ``(N, C, H, W)``.
        x_hat: the normalised input, shape of ``x``.
        gamma: the scale, ``(C,)``.
        mean: the mean ``x`` was centred with, ``(C,)`` float64 (batch mean in training
            mode, running mean in eval mode).
        inv_std: ``1 / sqrt(var + eps)`` per channel, ``(C,)`` float64 (batch variance in
            training mode, running variance in eval mode).
        axes: the axes averaged over: ``(0,)`` or ``(0, 2, 3)``.
        training: which mode the forward pass ran in.
    """

    x: np.ndarray
    x_hat: np.ndarray
    gamma: np.ndarray
    mean: np.ndarray
    inv_std: np.ndarray
    axes: tuple
    training: bool


def _channel_dot(a: np.ndarray, b: np.ndarray, axes: tuple) -> np.ndarray:
    """Per-channel ``sum(a * b)`` over ``axes``, multiplied and accumulated in float64.

    ``a``, ``b``: ``(N, C)`` or ``(N, C, H, W)``; returns ``(C,)`` float64. For float32
    inputs every product is exact in float64 (24 + 24 significant bits < 53).
    """
    subscripts = "nc,nc->c" if axes == (0,) else "nchw,nchw->c"
    return np.einsum(subscripts, a, b, dtype=np.float64)


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
    _check_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)

    if training:
        M = x.size // x.shape[1]  # values per channel: N or N * H * W
        mean64 = x.mean(axis=axes, dtype=np.float64)  # (C,)
        mean = mean64.astype(x.dtype)  # (C,), rounded once to x's dtype
        centred = x - _per_channel(mean, x.ndim)  # shape of x
        # Biased variance, divides by M. centred is about the *rounded* mean, which is off by
        # delta = mean64 - mean; E[(x - mean)^2] = var + delta^2 corrects for that exactly.
        delta = mean64 - mean  # (C,), 0 in float64
        var64 = _channel_dot(centred, centred, axes) / M - delta * delta  # (C,)
        unbiased_var64 = var64 * (M / (M - 1))  # (C,)
        old_mean64, old_var64 = running_mean.astype(np.float64), running_var.astype(np.float64)  # (C,)
        new_running_mean = ((1 - momentum) * old_mean64 + momentum * mean64).astype(x.dtype)  # (C,)
        new_running_var = ((1 - momentum) * old_var64 + momentum * unbiased_var64).astype(x.dtype)  # (C,)
    else:
        mean64 = running_mean.astype(np.float64)  # (C,)
        var64 = running_var.astype(np.float64)  # (C,)
        centred = x - _per_channel(running_mean, x.ndim)  # shape of x
        new_running_mean, new_running_var = running_mean, running_var

    inv_std64 = 1.0 / np.sqrt(var64 + eps)  # (C,)
    x_hat = centred * _per_channel(inv_std64.astype(x.dtype), x.ndim)  # shape of x
    out = _per_channel(gamma, x.ndim) * x_hat + _per_channel(beta, x.ndim)  # shape of x
    cache = BatchNormCache(x, x_hat, gamma, mean64, inv_std64, axes, bool(training))
    return out, cache, (new_running_mean, new_running_var)


def batchnorm_backward(dout: np.ndarray, cache: BatchNormCache):
    """Batch-norm backward pass (both modes).

    ``dgamma = sum(dout * x_hat)`` and ``dbeta = sum(dout)`` over the averaged axes. For the
    input gradient, ``g = dout * gamma`` is the gradient w.r.t. ``x_hat``:

    * eval mode: ``x_hat`` is affine in ``x``, so ``dx = g * inv_std``;
    * training mode: the batch mean and variance depend on every ``x`` too, which gives
      (per channel, means over the ``M`` values of the channel)::

          dx = gamma * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat))

      i.e. ``dout`` minus its projections on the constant vector and on ``x_hat``.

    Args:
        dout: upstream gradient, the shape of the forward input (``(N, C)`` or ``(N, C, H, W)``).
        cache: from :func:`batchnorm_forward`.

    Returns:
        ``(dx, dgamma, dbeta)`` with shapes ``x.shape``, ``(C,)``, ``(C,)``.
    """
    _check_backward(dout, cache)
    x, x_hat, gamma, mean64, inv_std64, axes, training = cache
    ndim = dout.ndim

    # Per-channel sums in float64. sum(dout * x_hat) is computed from x as
    # (sum(dout * x) - mean * sum(dout)) * inv_std rather than from the rounded x_hat.
    sum_dout = dout.sum(axis=axes, dtype=np.float64)  # (C,)
    sum_dout_xhat = (_channel_dot(dout, x, axes) - mean64 * sum_dout) * inv_std64  # (C,)
    dbeta = sum_dout.astype(dout.dtype)  # (C,)
    dgamma = sum_dout_xhat.astype(dout.dtype)  # (C,)

    scale = _per_channel(gamma * inv_std64.astype(dout.dtype), ndim)  # d out / d x at fixed statistics
    if not training:
        return dout * scale, dgamma, dbeta  # dx: shape of x

    M = x.size // x.shape[1]  # values per channel
    mean_dout = _per_channel((sum_dout / M).astype(dout.dtype), ndim)  # (C,) broadcast
    mean_dout_xhat = _per_channel((sum_dout_xhat / M).astype(dout.dtype), ndim)  # (C,) broadcast
    dx = (dout - mean_dout - x_hat * mean_dout_xhat) * scale  # shape of x
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------------------------
# Teaching version: training mode, one channel at a time, the formulas as written.
# ----------------------------------------------------------------------------------------------


def batchnorm_train_forward_loop(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5):
    """Training-mode batch norm, channel by channel (for reading; no running statistics, no checks).

    Args:
        x: ``(N, C)`` or ``(N, C, H, W)``; gamma, beta: ``(C,)``.

    Returns:
        ``(out, x_hat, inv_std)``: ``out`` and ``x_hat`` have the shape of ``x``;
        ``inv_std = 1 / sqrt(var + eps)`` is ``(C,)``. Same numbers as :func:`batchnorm_forward`.
    """
    out = np.empty_like(x)
    x_hat = np.empty_like(x)
    inv_std = np.empty(x.shape[1])
    for c in range(x.shape[1]):
        values = x[:, c]  # (N,) or (N, H, W): the M values of channel c
        mean = values.mean()
        var = ((values - mean) ** 2).mean()  # biased: divide by M
        inv_std[c] = 1.0 / np.sqrt(var + eps)
        x_hat[:, c] = (values - mean) * inv_std[c]
        out[:, c] = gamma[c] * x_hat[:, c] + beta[c]
    return out, x_hat, inv_std


def batchnorm_train_backward_loop(dout: np.ndarray, x_hat: np.ndarray, gamma: np.ndarray, inv_std: np.ndarray):
    """Training-mode batch-norm backward, channel by channel, from :func:`batchnorm_train_forward_loop`'s results.

    With ``g = dout * gamma`` (the gradient w.r.t. ``x_hat``) and means over the channel's
    ``M`` values: ``dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``.

    Returns:
        ``(dx, dgamma, dbeta)`` with shapes ``x.shape``, ``(C,)``, ``(C,)``.
    """
    dx = np.empty_like(dout)
    dgamma = np.empty(dout.shape[1])
    dbeta = np.empty(dout.shape[1])
    for c in range(dout.shape[1]):
        d, xh = dout[:, c], x_hat[:, c]  # the channel's upstream gradient and normalised values
        dbeta[c] = d.sum()
        dgamma[c] = (d * xh).sum()
        g = d * gamma[c]
        dx[:, c] = inv_std[c] * (g - g.mean() - xh * (g * xh).mean())
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by batchnorm_forward and batchnorm_backward; a bad argument
# raises a ValueError that names the layer (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps) -> None:
    """Ranks, shapes and dtypes; ``momentum`` in ``[0, 1]``, ``eps > 0``; training needs ``M >= 2``."""
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
    values_per_channel = x.size // C if C else 0  # M = N or N * H * W
    if training and values_per_channel < 2:
        raise ValueError(
            f"{_LAYER}: training mode needs more than one value per channel to estimate a variance, "
            f"got x of shape {x.shape}; use a batch of 2 or more, or training=False"
        )


def _check_backward(dout, cache: BatchNormCache) -> None:
    """``dout`` must have the forward input's shape and dtype."""
    check_float_array(f"{_LAYER}_backward", "dout", dout, "(N, C) or (N, C, H, W)", (2, 4))
    check_shape(f"{_LAYER}_backward", "dout", dout, cache.x.shape, "the forward input's shape")
    check_same_dtype(f"{_LAYER}_backward", "dout", dout, cache.x, "x")
