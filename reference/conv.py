"""2-D convolution, forward and backward, in two versions: loops and im2col.

Convention (the one PyTorch's ``nn.Conv2d`` uses): a "convolution" here is a
*cross-correlation* -- the kernel is **not** flipped::

    out[n, f, i, j] = b[f] + sum over c, u, v of
                      w[f, c, u, v] * x_pad[n, c, i * stride_h + u, j * stride_w + v]

where ``x_pad`` is ``x`` with ``padding_h`` rows of zeros above and below and ``padding_w``
columns of zeros left and right. The output size per axis is (floor division)::

    H_out = (H + 2 * padding_h - KH) // stride_h + 1

so trailing rows/columns that do not fill a whole kernel step are ignored, as in PyTorch.

Shapes (NCHW, like PyTorch):

* ``x``: ``(N, C, H, W)`` -- N images of C channels, H x W pixels;
* ``w``: ``(F, C, KH, KW)`` -- F filters, each C x KH x KW;
* ``b``: ``(F,)``;
* ``out``: ``(N, F, H_out, W_out)``.

``stride`` and ``padding`` are an int (the same on both axes) or a pair ``(vertical,
horizontal)``. Padding is zero padding only.

Two implementations compute the same numbers:

* :func:`conv2d_forward_naive` / :func:`conv2d_backward_naive` slide the kernel over every
  output position with Python loops: slow, but the formula above is visible in the code;
* :func:`conv2d_forward` / :func:`conv2d_backward` lay every receptive field out as a column
  ("im2col") and do the whole layer as one matrix product: the version the network uses.

The tests check the two against each other and against ``torch.nn.functional.conv2d``.

Precision: everything is computed in the input's dtype, except the bias gradient, a plain
sum over ``N * H_out * W_out`` values, which is accumulated in float64 and rounded once
(in float32 a long sum of mixed-sign values can lose most of its digits to cancellation).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference._checks import check_float_array, check_same_dtype, check_shape, int_pair

__all__ = [
    "ConvCache",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_forward_naive",
    "conv2d_backward_naive",
    "conv2d_output_size",
]


class ConvCache(NamedTuple):
    """What the backward pass needs from the forward pass.

    Attributes:
        x_shape: shape of the unpadded input, ``(N, C, H, W)``.
        w: the filters, ``(F, C, KH, KW)``.
        stride: ``(stride_h, stride_w)``.
        padding: ``(padding_h, padding_w)``.
        x_pad: the padded input ``(N, C, H + 2 padding_h, W + 2 padding_w)`` (naive version)
            or ``None``.
        cols: the im2col matrix ``(C * KH * KW, N * H_out * W_out)`` (vectorised version)
            or ``None``.
    """

    x_shape: tuple
    w: np.ndarray
    stride: tuple
    padding: tuple
    x_pad: np.ndarray | None
    cols: np.ndarray | None


def conv2d_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output length along one axis of a window sliding over ``size`` positions (convolution or pooling).

    ``floor((size + 2 * padding - kernel) / stride) + 1``: PyTorch's floor mode, where rows and
    columns that do not fill a whole window are dropped.
    """
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x: np.ndarray, padding: tuple) -> np.ndarray:
    """Zero-pad the two spatial axes: (N, C, H, W) -> (N, C, H + 2 ph, W + 2 pw)."""
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


# ----------------------------------------------------------------------------------------------
# Naive version: loops over output positions.
# ----------------------------------------------------------------------------------------------


def conv2d_forward_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride=1, padding=0):
    """Convolution forward pass with explicit loops (slow; for reading and testing).

    For every image ``n`` and output position ``(i, j)`` it cuts out the receptive field
    ``x_pad[n, :, i*sh : i*sh + KH, j*sw : j*sw + KW]`` and takes its dot product with every
    filter -- the formula of the module docstring, one output position at a time (the F
    filters of a position are done together, to keep the tests quick).

    Args:
        x: input, ``(N, C, H, W)``.
        w: filters, ``(F, C, KH, KW)``.
        b: biases, ``(F,)``.
        stride: int or ``(stride_h, stride_w)``, each >= 1.
        padding: int or ``(padding_h, padding_w)``, each >= 0 (zero padding).

    Returns:
        ``(out, cache)``: ``out`` of shape ``(N, F, H_out, W_out)`` and dtype ``x.dtype``;
        ``cache`` for :func:`conv2d_backward_naive`.

    Raises:
        ValueError: wrong ranks or dtypes, channel mismatch, bad stride/padding, or a kernel
            larger than the padded input.
    """
    (sh, sw), (ph, pw) = _check_forward("conv2d_naive", x, w, b, stride, padding)  # (vertical, horizontal) pairs
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out, W_out = conv2d_output_size(H, KH, sh, ph), conv2d_output_size(W, KW, sw, pw)
    x_pad = _pad(x, (ph, pw))  # (N, C, H + 2 ph, W + 2 pw)
    out = np.empty((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                field = x_pad[n, :, i * sh : i * sh + KH, j * sw : j * sw + KW]  # (C, KH, KW)
                # One dot product per filter: sum over c, u, v of w[f, c, u, v] * field[c, u, v].
                out[n, :, i, j] = np.tensordot(w, field, axes=3) + b  # (F,)
    cache = ConvCache(x.shape, w, (sh, sw), (ph, pw), x_pad, None)
    return out, cache


def conv2d_backward_naive(dout: np.ndarray, cache: ConvCache):
    """Convolution backward pass with explicit loops (slow; for reading and testing).

    Every output pixel ``out[n, f, i, j]`` came from one receptive field and one filter, so
    its upstream gradient ``g = dout[n, f, i, j]`` flows back to exactly those:
    ``dw[f] += g * field``, ``dx_pad[n, :, field] += g * w[f]`` and ``db[f] += g``. The
    padding border of ``dx_pad`` is cut off at the end (padding zeros are constants, not
    inputs).

    Args:
        dout: upstream gradient, ``(N, F, H_out, W_out)``.
        cache: from :func:`conv2d_forward_naive`.

    Returns:
        ``(dx, dw, db)`` with shapes ``(N, C, H, W)``, ``(F, C, KH, KW)``, ``(F,)``.
    """
    _check_backward("conv2d_backward_naive", dout, cache)
    x_pad, w = cache.x_pad, cache.w
    N, C, H, W = cache.x_shape
    F, _, KH, KW = w.shape
    sh, sw = cache.stride
    ph, pw = cache.padding
    H_out, W_out = dout.shape[2:]

    dx_pad = np.zeros_like(x_pad)  # (N, C, H + 2 ph, W + 2 pw)
    dw = np.zeros_like(w)  # (F, C, KH, KW)
    db = np.zeros(F, dtype=np.float64)  # (F,), summed in float64 like the vectorised version
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                rows = slice(i * sh, i * sh + KH)
                cols = slice(j * sw, j * sw + KW)
                field = x_pad[n, :, rows, cols]  # (C, KH, KW)
                g = dout[n, :, i, j]  # (F,): one upstream gradient per filter
                dw += g[:, None, None, None] * field  # (F, 1, 1, 1) * (C, KH, KW) -> (F, C, KH, KW)
                dx_pad[n, :, rows, cols] += np.tensordot(g, w, axes=1)  # sum over f of g[f] * w[f]: (C, KH, KW)
                db += g
    dx = dx_pad[:, :, ph : ph + H, pw : pw + W]  # (N, C, H, W): drop the padding border
    return np.ascontiguousarray(dx), dw, db.astype(w.dtype)


# ----------------------------------------------------------------------------------------------
# Vectorised version: im2col + one matrix product.
# ----------------------------------------------------------------------------------------------


def _im2col(x_pad: np.ndarray, KH: int, KW: int, stride: tuple, out_hw: tuple) -> np.ndarray:
    """Lay every receptive field of every image out as a column of one matrix.

    Args:
        x_pad: padded input, ``(N, C, Hp, Wp)``.
        KH, KW: kernel size.
        stride: ``(stride_h, stride_w)``.
        out_hw: ``(H_out, W_out)``.

    Returns:
        ``cols`` of shape ``(C * KH * KW, N * H_out * W_out)`` (a new contiguous array):
        ``cols[(c, u, v), (n, i, j)] = x_pad[n, c, i * stride_h + u, j * stride_w + v]``.
    """
    sh, sw = stride
    H_out, W_out = out_hw
    N, C = x_pad.shape[:2]
    # A read-only view, no copy: windows[n, c, y, x, u, v] = x_pad[n, c, y + u, x + v].
    windows = np.lib.stride_tricks.sliding_window_view(x_pad, (KH, KW), axis=(2, 3))  # (N, C, Hp-KH+1, Wp-KW+1, KH, KW)
    windows = windows[:, :, : (H_out - 1) * sh + 1 : sh, : (W_out - 1) * sw + 1 : sw]  # (N, C, H_out, W_out, KH, KW)
    cols = np.empty((C, KH, KW, N, H_out, W_out), dtype=x_pad.dtype)
    # The one copy of the forward pass, in the order the matrix product wants.
    np.copyto(cols, windows.transpose(1, 4, 5, 0, 2, 3))  # (C, KH, KW, N, H_out, W_out)
    return cols.reshape(C * KH * KW, N * H_out * W_out)  # free: cols is contiguous


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride=1, padding=0):
    """Convolution forward pass, vectorised with im2col.

    Each receptive field of the padded input becomes a column of
    ``cols: (C*KH*KW, N*H_out*W_out)``; with the filters as rows of
    ``w_rows: (F, C*KH*KW)`` the whole layer is **one** matrix product
    ``w_rows @ cols -> (F, N*H_out*W_out)`` (one large product keeps a multithreaded BLAS
    busy; many small ones spend their time synchronising threads).

    Args:
        x: input, ``(N, C, H, W)``.
        w: filters, ``(F, C, KH, KW)``.
        b: biases, ``(F,)``.
        stride: int or ``(stride_h, stride_w)``, each >= 1.
        padding: int or ``(padding_h, padding_w)``, each >= 0 (zero padding).

    Returns:
        ``(out, cache)``: ``out`` of shape ``(N, F, H_out, W_out)`` (C-contiguous) and dtype
        ``x.dtype``; ``cache`` for :func:`conv2d_backward` (it holds the im2col matrix).

    Raises:
        ValueError: wrong ranks or dtypes, channel mismatch, bad stride/padding, or a kernel
            larger than the padded input.
    """
    (sh, sw), (ph, pw) = _check_forward("conv2d", x, w, b, stride, padding)  # (vertical, horizontal) pairs
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out, W_out = conv2d_output_size(H, KH, sh, ph), conv2d_output_size(W, KW, sw, pw)
    x_pad = _pad(x, (ph, pw))  # (N, C, H + 2 ph, W + 2 pw)
    cols = _im2col(x_pad, KH, KW, (sh, sw), (H_out, W_out))  # (C*KH*KW, N*H_out*W_out)
    w_rows = w.reshape(F, C * KH * KW)  # (F, C*KH*KW)
    out_rows = w_rows @ cols  # (F, N*H_out*W_out)
    out_rows += b[:, None]  # b: (F,) -> (F, 1), the same bias at every position
    out = out_rows.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3)  # (N, F, H_out, W_out), a view
    cache = ConvCache(x.shape, w, (sh, sw), (ph, pw), None, cols)
    return np.ascontiguousarray(out), cache


def conv2d_backward(dout: np.ndarray, cache: ConvCache):
    """Convolution backward pass, vectorised (the reverse of im2col is "col2im").

    With ``out_rows = w_rows @ cols + b`` (one matrix product, see :func:`conv2d_forward`)
    and ``dout_rows: (F, N*H_out*W_out)`` the upstream gradient in the same layout:

    * ``db = dout_rows`` summed along its rows;
    * ``dw_rows = dout_rows @ cols.T`` -- one matrix product;
    * ``dcols = w_rows.T @ dout_rows`` -- one matrix product; every entry of ``dcols`` is
      then added back to the input pixel it was copied from. That scatter loops over the
      KH*KW kernel offsets only; each step adds a strided slab of all images and channels.

    Args:
        dout: upstream gradient, ``(N, F, H_out, W_out)``.
        cache: from :func:`conv2d_forward`.

    Returns:
        ``(dx, dw, db)`` with shapes ``(N, C, H, W)``, ``(F, C, KH, KW)``, ``(F,)``.
    """
    _check_backward("conv2d_backward", dout, cache)
    cols, w = cache.cols, cache.w
    N, C, H, W = cache.x_shape
    F, _, KH, KW = w.shape
    sh, sw = cache.stride
    ph, pw = cache.padding
    H_out, W_out = dout.shape[2:]

    dout_rows = dout.transpose(1, 0, 2, 3).reshape(F, N * H_out * W_out)  # (F, N*H_out*W_out), a copy
    db = dout_rows.sum(axis=1, dtype=np.float64).astype(dout.dtype)  # (F,), summed in float64
    dw = (dout_rows @ cols.T).reshape(F, C, KH, KW)  # (F, C*KH*KW) -> (F, C, KH, KW)

    w_rows = w.reshape(F, C * KH * KW)  # (F, C*KH*KW)
    dcols = w_rows.T @ dout_rows  # (C*KH*KW, N*H_out*W_out)
    dcols = dcols.reshape(C, KH, KW, N, H_out, W_out)  # (C, KH, KW, N, H_out, W_out)

    # col2im: kernel offset (u, v) of output position (i, j) read x_pad[.., i*sh + u, j*sw + v].
    dx_pad = np.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=w.dtype)  # (C, N, Hp, Wp): dcols' axis order
    for u in range(KH):
        for v in range(KW):
            dx_pad[:, :, u : u + (H_out - 1) * sh + 1 : sh, v : v + (W_out - 1) * sw + 1 : sw] += dcols[:, u, v]
    dx = dx_pad[:, :, ph : ph + H, pw : pw + W].transpose(1, 0, 2, 3)  # (N, C, H, W): no padding border
    return np.ascontiguousarray(dx), dw, db


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by the functions above; a bad argument raises a ValueError that
# names the layer (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_forward(layer: str, x, w, b, stride, padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """Check the forward pass's arguments; return ``stride`` and ``padding`` as ``(vertical, horizontal)`` ints."""
    check_float_array(layer, "x", x, "(N, C, H, W)", (4,))
    check_float_array(layer, "w", w, "(F, C, KH, KW)", (4,))
    check_float_array(layer, "b", b, "(F,)", (1,))
    check_same_dtype(layer, "w", w, x)
    check_same_dtype(layer, "b", b, x)
    N, C, H, W = x.shape
    F, C_w, KH, KW = w.shape
    if C_w != C:
        raise ValueError(
            f"{layer}: channel mismatch: x has C = {C} channels (x: (N, C, H, W) = {x.shape}) but "
            f"w expects {C_w} (w: (F, C, KH, KW) = {w.shape}); w must have shape (F, {C}, KH, KW)"
        )
    check_shape(layer, "b", b, (F,), "(F,) (one bias per filter)")
    stride_hw = int_pair(layer, "stride", stride, minimum=1)
    padding_hw = int_pair(layer, "padding", padding, minimum=0)
    if N == 0 or C == 0 or F == 0 or KH == 0 or KW == 0:
        raise ValueError(f"{layer}: empty input: x {x.shape}, w {w.shape}; every dimension must be >= 1")
    padded = (H + 2 * padding_hw[0], W + 2 * padding_hw[1])
    if KH > padded[0] or KW > padded[1]:
        raise ValueError(
            f"{layer}: kernel {KH}x{KW} is larger than the padded input {padded[0]}x{padded[1]} "
            f"(x: (N, C, H, W) = {x.shape}, padding {padding_hw}); use a smaller kernel or more padding"
        )
    return stride_hw, padding_hw


def _check_backward(layer: str, dout, cache: ConvCache) -> None:
    """Check that ``cache`` comes from the matching forward pass and ``dout`` has its output's shape and dtype."""
    if layer == "conv2d_backward_naive" and cache.x_pad is None:
        raise ValueError("conv2d_backward_naive: the cache comes from conv2d_forward; use conv2d_backward")
    if layer == "conv2d_backward" and cache.cols is None:
        raise ValueError("conv2d_backward: the cache comes from conv2d_forward_naive; use conv2d_backward_naive")
    N, _, H, W = cache.x_shape
    F, _, KH, KW = cache.w.shape
    H_out, W_out = (conv2d_output_size(s, k, st, p)
                    for s, k, st, p in zip((H, W), (KH, KW), cache.stride, cache.padding))
    check_float_array(layer, "dout", dout, "(N, F, H_out, W_out)", (4,))
    check_shape(layer, "dout", dout, (N, F, H_out, W_out), "(N, F, H_out, W_out), the forward output's shape")
    check_same_dtype(layer, "dout", dout, cache.w, "w")
