"""The loop versions written for the lessons compute what the vectorised reference layers compute.

The lessons show these short loops first; here they are checked against the functions the
network uses (themselves checked against PyTorch in the test_reference_* files), in float64,
for 2-D and 4-D inputs of hypothesis-drawn sizes.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

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
