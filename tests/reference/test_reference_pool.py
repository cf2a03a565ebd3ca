"""reference.pool against torch.nn.functional.max_pool2d, loops vs vectorised, ties, and
central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given

from reference.gradcheck import numeric_gradient
from reference.pool import maxpool2d_backward, maxpool2d_backward_naive, maxpool2d_forward, maxpool2d_forward_naive
from strategies import DTYPES, PoolCase, check_errors, compare_with_torch, pool_cases
from tolerances import LAYER_F64, NUMERIC_GRAD, assert_close


def _torch_stride(case: PoolCase):
    return case.kernel if case.stride is None else case.stride  # torch's own default is also the kernel


def pool_errors(case: PoolCase, dtype, forward=maxpool2d_forward, backward=maxpool2d_backward, *, ties=False) -> dict:
    """One NumPy max-pool (forward, dx) against torch autograd.

    ``ties=True`` draws the input from {0, 1, 2}, so most windows hold their maximum
    several times and the gradient's tie rule (first maximum, row-major) is what is tested.
    """
    rng = np.random.default_rng(case.seed)
    if ties:
        x = rng.integers(0, 3, size=case.x_shape).astype(dtype)
    else:
        x = rng.standard_normal(case.x_shape).astype(dtype)
    out, cache = forward(x, case.kernel, case.stride)
    dout = rng.standard_normal(out.shape).astype(dtype)  # random upstream gradient
    dx = backward(dout, cache)

    def run_torch(torch_dtype):
        xt = torch.tensor(x, dtype=torch_dtype, requires_grad=True)
        out_t = F.max_pool2d(xt, case.kernel, _torch_stride(case))
        out_t.backward(torch.tensor(dout, dtype=torch_dtype))
        return {"forward": out_t.detach().numpy(), "dx": xt.grad.numpy()}

    return compare_with_torch({"forward": out, "dx": dx}, run_torch, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=pool_cases())
def test_maxpool2d_matches_torch(case, dtype):
    check_errors("maxpool2d", dtype, pool_errors(case, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=pool_cases())
def test_maxpool2d_naive_matches_torch(case, dtype):
    check_errors("maxpool2d_naive", dtype, pool_errors(case, dtype, maxpool2d_forward_naive, maxpool2d_backward_naive))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=pool_cases())
def test_ties_send_the_gradient_to_the_first_maximum_like_torch(case, dtype):
    check_errors("maxpool2d (ties)", dtype, pool_errors(case, dtype, ties=True))
    check_errors(
        "maxpool2d_naive (ties)",
        dtype,
        pool_errors(case, dtype, maxpool2d_forward_naive, maxpool2d_backward_naive, ties=True),
    )


def test_tie_rule_on_a_hand_made_window():
    # One 2x2 window full of equal values: the whole gradient goes to the top-left entry.
    x = np.ones((1, 1, 2, 2))
    for forward, backward in ((maxpool2d_forward, maxpool2d_backward), (maxpool2d_forward_naive, maxpool2d_backward_naive)):
        out, cache = forward(x, 2)
        dx = backward(np.full((1, 1, 1, 1), 5.0), cache)
        np.testing.assert_array_equal(dx[0, 0], [[5.0, 0.0], [0.0, 0.0]])


@given(case=pool_cases())
def test_naive_and_vectorised_agree(case):
    rng = np.random.default_rng(case.seed)
    x = rng.integers(0, 4, size=case.x_shape).astype(np.float64)  # ties included
    out, cache = maxpool2d_forward(x, case.kernel, case.stride)
    out_naive, cache_naive = maxpool2d_forward_naive(x, case.kernel, case.stride)
    np.testing.assert_array_equal(out, out_naive)
    np.testing.assert_array_equal(cache.argmax, cache_naive.argmax)
    dout = rng.standard_normal(out.shape)
    assert_close(maxpool2d_backward(dout, cache), maxpool2d_backward_naive(dout, cache_naive), LAYER_F64, "dx")


@given(case=pool_cases(small=True))
def test_maxpool2d_backward_matches_numeric_gradient(case):
    rng = np.random.default_rng(case.seed)
    # Distinct values 0.1 apart: no window has a tie within the step h = 1e-6.
    x = rng.permutation(int(np.prod(case.x_shape))).reshape(case.x_shape) * 0.1
    out, cache = maxpool2d_forward(x, case.kernel, case.stride)
    dout = rng.standard_normal(out.shape)
    numeric = numeric_gradient(lambda _: maxpool2d_forward(x, case.kernel, case.stride)[0], x, dout)
    assert_close(maxpool2d_backward(dout, cache), numeric, NUMERIC_GRAD, "dx")


def test_stride_defaults_to_kernel_and_floor_mode():
    x = np.arange(7 * 7, dtype=np.float64).reshape(1, 1, 7, 7)
    out, _ = maxpool2d_forward(x, 3)
    assert out.shape == (1, 1, 2, 2)  # floor(7 / 3): the last row and column are dropped
    np.testing.assert_array_equal(out[0, 0], [[16.0, 19.0], [37.0, 40.0]])
    out, _ = maxpool2d_forward(x, 3, stride=2)  # the network's Pool3: overlapping windows
    assert out.shape == (1, 1, 3, 3)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("forward", [maxpool2d_forward, maxpool2d_forward_naive])
@pytest.mark.parametrize(
    ("x", "kernel", "stride", "message"),
    [
        (np.zeros((3, 8, 8)), 2, None, r"x must have shape \(N, C, H, W\) \(4 dimensions\), got shape \(3, 8, 8\)"),
        (np.zeros((1, 3, 4, 4)), 5, None, r"kernel 5x5 is larger than the input 4x4"),
        (np.zeros((1, 3, 4, 4)), (2, 5), None, r"kernel 2x5 is larger than the input 4x4"),
        (np.zeros((1, 3, 4, 4)), 0, None, r"kernel must be an integer >= 1, got 0"),
        (np.zeros((1, 3, 4, 4)), 2, 0, r"stride must be an integer >= 1, got 0"),
        (np.zeros((1, 3, 4, 4)), 2, 1.0, r"stride must be an integer >= 1, got 1.0"),
        (np.zeros((1, 3, 4, 4), dtype=np.int32), 2, None, r"x must be float32 or float64"),
    ],
)
def test_bad_input_raises_value_error(forward, x, kernel, stride, message):
    with pytest.raises(ValueError, match=r"^maxpool2d(_naive)?: " + message):
        forward(x, kernel, stride)


@pytest.mark.parametrize("backward", [maxpool2d_backward, maxpool2d_backward_naive])
def test_backward_rejects_wrongly_shaped_gradient(backward):
    _, cache = maxpool2d_forward(np.zeros((2, 3, 4, 4)), 2)
    with pytest.raises(ValueError, match=r"dout must have shape \(N, C, H_out, W_out\).*\(2, 3, 2, 2\), got \(2, 3, 2, 1\)"):
        backward(np.zeros((2, 3, 2, 1)), cache)
