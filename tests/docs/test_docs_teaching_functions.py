"""The loop versions written for the lessons compute what the vectorised reference layers compute.

The lessons show these short loops first (``reference.batchnorm``'s loops and
``docs/_helpers/lesson_loops.py``); here they are checked against the functions the network uses
(themselves checked against PyTorch in the test_reference_* files), in float64, for inputs of
hypothesis-drawn sizes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_helpers"))
try:
    import lesson_loops as loops
finally:
    sys.path.pop(0)

from reference.batchnorm import (batchnorm_backward, batchnorm_forward, batchnorm_train_backward_loop,
                                 batchnorm_train_forward_loop)


@given(n=st.integers(2, 6), c=st.integers(1, 5), spatial=st.sampled_from([(), (3, 3), (2, 5)]),
       seed=st.integers(0, 2**32 - 1))
def test_batchnorm_loop_matches_vectorised(n, c, spatial, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.5, 3.0, size=(n, c) + spatial)
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    dout = rng.standard_normal(x.shape)
    out, cache, _ = batchnorm_forward(x, gamma, beta, np.zeros(c), np.ones(c), training=True)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    out_loop, x_hat, inv_std = batchnorm_train_forward_loop(x, gamma, beta)
    dx_loop, dgamma_loop, dbeta_loop = batchnorm_train_backward_loop(dout, x_hat, gamma, inv_std)
    for loop, vectorised in ((out_loop, out), (dx_loop, dx), (dgamma_loop, dgamma), (dbeta_loop, dbeta)):
        np.testing.assert_allclose(loop, vectorised, rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- the loops of docs/_helpers/lesson_loops.py

_seeds = st.integers(0, 2**32 - 1)


@given(n=st.integers(1, 2), c=st.integers(1, 3), f=st.integers(1, 3), size=st.integers(3, 6),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 2), seed=_seeds)
def test_conv_loops_match_reference(n, c, f, size, k, stride, padding, seed):
    from reference.conv import conv2d_backward, conv2d_forward

    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, c, size, size)), rng.standard_normal((f, c, k, k)), rng.standard_normal(f)
    out, cache = conv2d_forward(x, w, b, stride=stride, padding=padding)
    dout = rng.standard_normal(out.shape)
    y, x_pad = loops.conv2d_forward_loops(x, w, b, stride, padding)
    np.testing.assert_allclose(y, out, rtol=1e-10, atol=1e-10)
    for loop, vectorised in zip(loops.conv2d_backward_loops(dout, x_pad, w, stride, padding),
                                conv2d_backward(dout, cache)):
        np.testing.assert_allclose(loop, vectorised, rtol=1e-10, atol=1e-10)


@given(shape=st.sampled_from([(3, 4), (2, 3, 2, 2)]), seed=_seeds)
def test_relu_and_dropout_loops_match_reference(shape, seed):
    from reference.dropout import dropout_backward, dropout_forward
    from reference.relu import relu_backward, relu_forward

    rng = np.random.default_rng(seed)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    x.flat[0] = 0.0  # the kink: both give 0 there
    out, cache = relu_forward(x)
    y, positive = loops.relu_forward_loops(x)
    np.testing.assert_array_equal(y, out)
    np.testing.assert_array_equal(loops.relu_backward_loops(dout, positive), relu_backward(dout, cache))
    keep, p = rng.random(shape) >= 0.3, 0.3
    out, cache = dropout_forward(x, p, training=True, mask=keep)
    np.testing.assert_allclose(loops.dropout_forward_loops(x, p, keep), out, rtol=1e-12)
    np.testing.assert_allclose(loops.dropout_backward_loops(dout, p, keep), dropout_backward(dout, cache), rtol=1e-12)


@given(n=st.integers(1, 4), d_in=st.integers(1, 5), d_out=st.integers(1, 5), seed=_seeds)
def test_linear_loops_match_reference(n, d_in, d_out, seed):
    from reference.linear import linear_backward, linear_forward

    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((n, d_in)), rng.standard_normal((d_out, d_in)), rng.standard_normal(d_out)
    out, cache = linear_forward(x, W, b)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(loops.linear_forward_loops(x, W, b), out, rtol=1e-10, atol=1e-12)
    for loop, vectorised in zip(loops.linear_backward_loops(dout, x, W), linear_backward(dout, cache)):
        np.testing.assert_allclose(loop, vectorised, rtol=1e-10, atol=1e-12)


@given(n=st.integers(1, 4), k=st.integers(2, 6), scale=st.sampled_from([1.0, 30.0]), seed=_seeds)
def test_softmax_cross_entropy_loops_match_reference(n, k, scale, seed):
    from reference.loss import softmax_cross_entropy

    rng = np.random.default_rng(seed)
    logits, labels = scale * rng.standard_normal((n, k)), rng.integers(0, k, n)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    loop_loss, loop_dlogits = loops.softmax_cross_entropy_loops(logits, labels)
    np.testing.assert_allclose(loop_loss, loss, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loop_dlogits, dlogits, rtol=1e-9, atol=1e-12)


@given(size=st.integers(1, 5), steps=st.integers(1, 4), seed=_seeds)
def test_adam_loops_match_reference(size, steps, seed):
    from reference.adam import AdamState, adam_step

    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(size)
    params, state = {"theta": theta.copy()}, AdamState()
    m, v = np.zeros(size), np.zeros(size)
    for t in range(1, steps + 1):
        grad = rng.standard_normal(size) * 10.0 ** rng.integers(-3, 3)
        adam_step(params, {"theta": grad}, state, lr=1e-3, betas=(0.9, 0.999))
        loops.adam_step_loops(theta, grad, m, v, t)
    np.testing.assert_allclose(theta, params["theta"], rtol=1e-12, atol=1e-15)


@given(n=st.integers(1, 2), c=st.integers(1, 3), size=st.integers(2, 7), k=st.integers(1, 3), stride=st.integers(1, 3),
       ties=st.booleans(), seed=_seeds)
def test_maxpool_loops_match_reference(n, c, size, k, stride, ties, seed):
    from hypothesis import assume

    from reference.pool import maxpool2d_backward, maxpool2d_forward

    assume(k <= size)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (n, c, size, size)).astype(float) if ties else rng.standard_normal((n, c, size, size))
    out, cache = maxpool2d_forward(x, k, stride)
    dout = rng.standard_normal(out.shape)
    y, argmax = loops.maxpool2d_forward_loops(x, k, stride)
    np.testing.assert_array_equal(y, out)
    np.testing.assert_allclose(loops.maxpool2d_backward_loops(dout, argmax, x.shape), maxpool2d_backward(dout, cache),
                               rtol=1e-12, atol=1e-12)
