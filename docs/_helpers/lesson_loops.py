"""The loop versions the lessons show before the vectorised layers: each equation as plain loops.

Written for reading, not for speed: one loop per index of the equation, one term per line,
nothing vectorised. ``tests/docs/test_docs_teaching_functions.py`` checks each against the
``reference`` function the network uses (itself checked against PyTorch).
"""

from __future__ import annotations

from itertools import product

import numpy as np


# ----------------------------------------------------------------------------- convolution


def conv2d_forward_loops(x, w, b, stride, padding):
    """y[n, f, i, j] = b[f] + sum over c, u, v of w[f, c, u, v] * x_pad[n, c, s*i + u, s*j + v]."""
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out = (H + 2 * padding - k) // stride + 1
    W_out = (W + 2 * padding - k) // stride + 1
    y = np.zeros((N, F, H_out, W_out))
    for n, f, i, j in product(range(N), range(F), range(H_out), range(W_out)):
        total = b[f]
        for c, u, v in product(range(C), range(k), range(k)):
            total += w[f, c, u, v] * x_pad[n, c, stride * i + u, stride * j + v]
        y[n, f, i, j] = total
    return y, x_pad


def conv2d_backward_loops(dy, x_pad, w, stride, padding):
    """The three gradients of the derivation, added up one term at a time."""
    N, F, H_out, W_out = dy.shape
    _, C, k, _ = w.shape
    dx_pad, dw, db = np.zeros(x_pad.shape), np.zeros(w.shape), np.zeros(F)
    for n, f, i, j in product(range(N), range(F), range(H_out), range(W_out)):
        g = dy[n, f, i, j]  # the upstream gradient of this output
        db[f] += g
        for c, u, v in product(range(C), range(k), range(k)):
            row, col = stride * i + u, stride * j + v  # the padded input pixel w[f, c, u, v] met
            dw[f, c, u, v] += g * x_pad[n, c, row, col]
            dx_pad[n, c, row, col] += g * w[f, c, u, v]
    H, W = x_pad.shape[2] - 2 * padding, x_pad.shape[3] - 2 * padding
    dx = dx_pad[:, :, padding: padding + H, padding: padding + W]  # padding is no input
    return dx, dw, db


# ----------------------------------------------------------------------------- max-pool


def maxpool2d_forward_loops(x, k, stride):
    """y[n, c, i, j] = the largest value of window (i, j); argmax remembers where it was (the first, on ties)."""
    N, C, H, W = x.shape
    H_out, W_out = (H - k) // stride + 1, (W - k) // stride + 1
    y = np.zeros((N, C, H_out, W_out))
    argmax = np.zeros((N, C, H_out, W_out, 2), dtype=int)  # the (row, column) of each maximum
    for n, c, i, j in product(range(N), range(C), range(H_out), range(W_out)):
        best = None
        for u, v in product(range(k), range(k)):  # row by row: the first maximum wins a tie
            row, col = stride * i + u, stride * j + v
            if best is None or x[n, c, row, col] > best:
                best, argmax[n, c, i, j] = x[n, c, row, col], (row, col)
        y[n, c, i, j] = best
    return y, argmax


def maxpool2d_backward_loops(dy, argmax, x_shape):
    """Each output's gradient goes to the input that was its maximum; overlapping windows add up."""
    dx = np.zeros(x_shape)
    N, C, H_out, W_out = dy.shape
    for n, c, i, j in product(range(N), range(C), range(H_out), range(W_out)):
        row, col = argmax[n, c, i, j]
        dx[n, c, row, col] += dy[n, c, i, j]
    return dx


# ----------------------------------------------------------------------------- ReLU


def relu_forward_loops(x):
    """y = max(x, 0), value by value; the mask remembers which values were positive."""
    y, positive = np.zeros(x.shape), np.zeros(x.shape, dtype=bool)
    for index in np.ndindex(x.shape):
        positive[index] = x[index] > 0
        y[index] = x[index] if positive[index] else 0.0
    return y, positive


def relu_backward_loops(dy, positive):
    """dL/dx = dL/dy where the input was positive, 0 elsewhere (0 also at x = 0)."""
    dx = np.zeros(dy.shape)
    for index in np.ndindex(dy.shape):
        dx[index] = dy[index] if positive[index] else 0.0
    return dx


# ----------------------------------------------------------------------------- linear


def linear_forward_loops(x, W, b):
    """y[n, o] = b[o] + sum over i of x[n, i] * W[o, i]."""
    N, D_in = x.shape
    D_out = W.shape[0]
    y = np.zeros((N, D_out))
    for n, o in product(range(N), range(D_out)):
        y[n, o] = b[o]
        for i in range(D_in):
            y[n, o] += x[n, i] * W[o, i]
    return y


def linear_backward_loops(dy, x, W):
    """Each weight, input and bias collects dL/dy times the factor it was multiplied with."""
    N, D_in = x.shape
    D_out = W.shape[0]
    dx, dW, db = np.zeros(x.shape), np.zeros(W.shape), np.zeros(D_out)
    for n, o in product(range(N), range(D_out)):
        db[o] += dy[n, o]
        for i in range(D_in):
            dW[o, i] += dy[n, o] * x[n, i]
            dx[n, i] += dy[n, o] * W[o, i]
    return dx, dW, db


# ----------------------------------------------------------------------------- dropout


def dropout_forward_loops(x, p, keep):
    """y = x / (1 - p) where the mask keeps the value, 0 where it drops it (training mode)."""
    y = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        y[index] = x[index] / (1 - p) if keep[index] else 0.0
    return y


def dropout_backward_loops(dy, p, keep):
    """The same mask and scale on the way back."""
    dx = np.zeros(dy.shape)
    for index in np.ndindex(dy.shape):
        dx[index] = dy[index] / (1 - p) if keep[index] else 0.0
    return dx


# ----------------------------------------------------------------------------- softmax cross-entropy


def softmax_cross_entropy_loops(logits, labels):
    """Mean loss over the batch and dL/ds, one sample and one class at a time (max subtracted first)."""
    N, K = logits.shape
    loss, dlogits = 0.0, np.zeros((N, K))
    for n in range(N):
        largest = max(logits[n])
        total = 0.0
        for k in range(K):
            total += np.exp(logits[n, k] - largest)
        for k in range(K):
            p = np.exp(logits[n, k] - largest) / total
            dlogits[n, k] = (p - (1.0 if k == labels[n] else 0.0)) / N
        loss += (largest + np.log(total) - logits[n, labels[n]]) / N
    return loss, dlogits


# ----------------------------------------------------------------------------- Adam


def adam_step_loops(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """Step t (1, 2, ...) of Adam for one array of parameters, value by value, in place."""
    beta1, beta2 = betas
    for index in np.ndindex(theta.shape):
        g = grad[index]
        m[index] = beta1 * m[index] + (1 - beta1) * g
        v[index] = beta2 * v[index] + (1 - beta2) * g * g
        m_hat = m[index] / (1 - beta1 ** t)
        v_hat = v[index] / (1 - beta2 ** t)
        theta[index] -= lr * m_hat / (np.sqrt(v_hat) + eps)
