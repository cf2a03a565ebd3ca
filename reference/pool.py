"""2-D max pooling (PyTorch's ``nn.MaxPool2d`` without padding or dilation).

Every ``KH x KW`` window, stepped by ``stride``, is replaced by its maximum::

    out[n, c, i, j] = max over u, v of x[n, c, i * stride_h + u, j * stride_w + v]

* ``stride`` defaults to the kernel size (non-overlapping windows);
* floor mode: ``H_out = (H - KH) // stride_h + 1``; rows/columns that do not fill a whole
  window are dropped;
* no padding.

Gradient convention: the whole upstream gradient of a window goes to its arg-max. When a
window holds the maximum more than once, the *first* one in row-major window order (``u``
then ``v``) gets it, as in PyTorch's CPU kernel. Overlapping windows (stride < kernel) can
pick the same input; its gradients add up.

Two implementations: :func:`maxpool2d_forward_naive` / :func:`maxpool2d_backward_naive`
(loops over output positions) and :func:`maxpool2d_forward` / :func:`maxpool2d_backward`
(a strided window view, no loops over images, channels or positions).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference._checks import check_float_array, check_shape, int_pair
from reference.conv import conv2d_output_size

__all__ = [
    "PoolCache",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "maxpool2d_forward_naive",
    "maxpool2d_backward_naive",
]


class PoolCache(NamedTuple):
    """What the backward pass needs.

    Attributes:
        x_shape: the input's shape ``(N, C, H, W)``.
        kernel: ``(KH, KW)``.
        stride: ``(stride_h, stride_w)``.
        argmax: for every output ``(N, C, H_out, W_out)``, the flat index ``u * KW + v`` of
            the first maximum inside its window.
    """

    x_shape: tuple
    kernel: tuple
    stride: tuple
    argmax: np.ndarray


# ----------------------------------------------------------------------------------------------
# Naive version: loops over output positions.
# ----------------------------------------------------------------------------------------------


def maxpool2d_forward_naive(x: np.ndarray, kernel, stride=None):
    """Max-pool forward pass with explicit loops (slow; for reading and testing).

    For every output position ``(i, j)`` the window ``x[:, :, i*sh : i*sh + KH,
    j*sw : j*sw + KW]`` of all images and channels is flattened row-major and its
    ``argmax`` (NumPy's ``argmax`` returns the first maximum) is recorded.

    Args:
        x: input, ``(N, C, H, W)``.
        kernel: int or ``(KH, KW)``, window size.
        stride: int, ``(stride_h, stride_w)`` or ``None`` (= ``kernel``).

    Returns:
        ``(out, cache)``: ``out`` of shape ``(N, C, H_out, W_out)`` and dtype ``x.dtype``.

    Raises:
        ValueError: wrong rank or dtype, bad kernel/stride, or a kernel larger than the input.
    """
    (KH, KW), (sh, sw) = _check_forward("maxpool2d_naive", x, kernel, stride)  # as pairs; stride None = kernel
    N, C, H, W = x.shape
    H_out, W_out = conv2d_output_size(H, KH, sh), conv2d_output_size(W, KW, sw)
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    argmax = np.empty((N, C, H_out, W_out), dtype=np.intp)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * sh : i * sh + KH, j * sw : j * sw + KW]  # (N, C, KH, KW)
            flat = window.reshape(N, C, KH * KW)  # (N, C, KH*KW), row-major: index u * KW + v
            first = flat.argmax(axis=2)  # (N, C)
            argmax[:, :, i, j] = first
            out[:, :, i, j] = np.take_along_axis(flat, first[:, :, None], axis=2)[:, :, 0]  # (N, C)
    return out, PoolCache(x.shape, (KH, KW), (sh, sw), argmax)


def maxpool2d_backward_naive(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Max-pool backward pass with explicit loops (slow; for reading and testing).

    Every ``dout[n, c, i, j]`` is added to the input pixel its window's first maximum came
    from.

    Args:
        dout: upstream gradient, ``(N, C, H_out, W_out)``.
        cache: from :func:`maxpool2d_forward_naive` or :func:`maxpool2d_forward`.

    Returns:
        ``dx`` of shape ``(N, C, H, W)``.
    """
    _check_backward("maxpool2d_backward_naive", dout, cache)
    N, C, H_out, W_out = dout.shape
    KH, KW = cache.kernel
    sh, sw = cache.stride
    dx = np.zeros(cache.x_shape, dtype=dout.dtype)  # (N, C, H, W)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    u, v = divmod(int(cache.argmax[n, c, i, j]), KW)  # flat window index -> (row, column)
                    dx[n, c, i * sh + u, j * sw + v] += dout[n, c, i, j]
    return dx


# ----------------------------------------------------------------------------------------------
# Vectorised version: a strided view of all windows.
# ----------------------------------------------------------------------------------------------


def maxpool2d_forward(x: np.ndarray, kernel, stride=None):
    """Max-pool forward pass, vectorised.

    ``sliding_window_view`` gives every window without copying; one ``argmax`` over the
    flattened windows finds all maxima at once.

    Args:
        x: input, ``(N, C, H, W)``.
        kernel: int or ``(KH, KW)``, window size.
        stride: int, ``(stride_h, stride_w)`` or ``None`` (= ``kernel``).

    Returns:
        ``(out, cache)``: ``out`` of shape ``(N, C, H_out, W_out)`` and dtype ``x.dtype``.

    Raises:
        ValueError: wrong rank or dtype, bad kernel/stride, or a kernel larger than the input.
    """
    (KH, KW), (sh, sw) = _check_forward("maxpool2d", x, kernel, stride)  # as pairs; stride None = kernel
    N, C, H, W = x.shape
    H_out, W_out = conv2d_output_size(H, KH, sh), conv2d_output_size(W, KW, sw)
    windows = np.lib.stride_tricks.sliding_window_view(x, (KH, KW), axis=(2, 3))  # (N, C, H-KH+1, W-KW+1, KH, KW)
    windows = windows[:, :, : (H_out - 1) * sh + 1 : sh, : (W_out - 1) * sw + 1 : sw]  # (N, C, H_out, W_out, KH, KW)
    flat = windows.reshape(N, C, H_out, W_out, KH * KW)  # (N, C, H_out, W_out, KH*KW), a copy
    argmax = flat.argmax(axis=4)  # (N, C, H_out, W_out), first maximum in row-major order
    out = np.take_along_axis(flat, argmax[..., None], axis=4)[..., 0]  # (N, C, H_out, W_out)
    return out, PoolCache(x.shape, (KH, KW), (sh, sw), argmax)


def maxpool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Max-pool backward pass, vectorised.

    Loops over the ``KH * KW`` window offsets ``(u, v)`` only: the outputs whose arg-max is
    offset ``(u, v)`` send their gradient to the strided slab
    ``dx[:, :, u::stride_h, v::stride_w]``, all images, channels and positions at once.

    Args:
        dout: upstream gradient, ``(N, C, H_out, W_out)``.
        cache: from :func:`maxpool2d_forward` or :func:`maxpool2d_forward_naive`.

    Returns:
        ``dx`` of shape ``(N, C, H, W)``.
    """
    _check_backward("maxpool2d_backward", dout, cache)
    _, _, H_out, W_out = dout.shape
    KH, KW = cache.kernel
    sh, sw = cache.stride
    dx = np.zeros(cache.x_shape, dtype=dout.dtype)  # (N, C, H, W)
    zero = dout.dtype.type(0)
    for u in range(KH):
        for v in range(KW):
            routed = np.where(cache.argmax == u * KW + v, dout, zero)  # (N, C, H_out, W_out)
            dx[:, :, u : u + (H_out - 1) * sh + 1 : sh, v : v + (W_out - 1) * sw + 1 : sw] += routed
    return dx


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by the functions above; a bad argument raises a ValueError that
# names the layer (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_forward(layer: str, x, kernel, stride) -> tuple[tuple[int, int], tuple[int, int]]:
    """Check the forward pass's arguments; return ``kernel`` and ``stride`` (default: ``kernel``) as pairs of ints."""
    check_float_array(layer, "x", x, "(N, C, H, W)", (4,))
    kernel_hw = int_pair(layer, "kernel", kernel, minimum=1)
    stride_hw = kernel_hw if stride is None else int_pair(layer, "stride", stride, minimum=1)
    N, C, H, W = x.shape
    if N == 0 or C == 0:
        raise ValueError(f"{layer}: empty input x of shape (N, C, H, W) = {x.shape}; N and C must be >= 1")
    if kernel_hw[0] > H or kernel_hw[1] > W:
        raise ValueError(
            f"{layer}: kernel {kernel_hw[0]}x{kernel_hw[1]} is larger than the input {H}x{W} "
            f"(x: (N, C, H, W) = {x.shape}; max pooling has no padding); use a smaller kernel"
        )
    return kernel_hw, stride_hw


def _check_backward(layer: str, dout, cache: PoolCache) -> None:
    """``dout`` must be a float array of the forward output's shape."""
    check_float_array(layer, "dout", dout, "(N, C, H_out, W_out)", (4,))
    check_shape(layer, "dout", dout, cache.argmax.shape, "(N, C, H_out, W_out), the forward output's shape")
