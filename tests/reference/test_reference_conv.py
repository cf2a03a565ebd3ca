"""reference.conv against torch.nn.functional.conv2d, against itself (loops vs im2col) and
against central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from reference.conv import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from reference.gradcheck import numeric_gradient
from strategies import DTYPES, Agreement, ConvCase, check_errors, compare_with_torch, conv_cases
from tolerances import LAYER_F64, NUMERIC_GRAD, assert_close


def _data(case: ConvCase, dtype):
    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    b = rng.standard_normal(case.w_shape[0]).astype(dtype)
    return rng, x, w, b


def conv_errors(case: ConvCase, dtype, forward=conv2d_forward, backward=conv2d_backward) -> dict[str, Agreement]:
    """One NumPy convolution (forward, dx, dw, db) against torch autograd."""
    rng, x, w, b = _data(case, dtype)
    out, cache = forward(x, w, b, stride=case.stride, padding=case.padding)
    dout = rng.standard_normal(out.shape).astype(dtype)  # random upstream gradient
    dx, dw, db = backward(dout, cache)

    def run_torch(torch_dtype):
        xt, wt, bt = (torch.tensor(a, dtype=torch_dtype, requires_grad=True) for a in (x, w, b))
        out_t = F.conv2d(xt, wt, bt, stride=case.stride, padding=case.padding)
        out_t.backward(torch.tensor(dout, dtype=torch_dtype))
        return {"forward": out_t.detach().numpy(), "dx": xt.grad.numpy(), "dw": wt.grad.numpy(), "db": bt.grad.numpy()}

    return compare_with_torch({"forward": out, "dx": dx, "dw": dw, "db": db}, run_torch, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=conv_cases())
def test_conv2d_matches_torch(case, dtype):
    check_errors("conv2d", dtype, conv_errors(case, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=conv_cases())
def test_conv2d_naive_matches_torch(case, dtype):
    check_errors("conv2d_naive", dtype, conv_errors(case, dtype, conv2d_forward_naive, conv2d_backward_naive))


@given(case=conv_cases())
def test_naive_and_vectorised_agree(case):
    rng, x, w, b = _data(case, np.float64)
    out, cache = conv2d_forward(x, w, b, case.stride, case.padding)
    out_naive, cache_naive = conv2d_forward_naive(x, w, b, case.stride, case.padding)
    assert_close(out, out_naive, LAYER_F64, "forward")
    dout = rng.standard_normal(out.shape)
    for name, fast, slow in zip(("dx", "dw", "db"), conv2d_backward(dout, cache), conv2d_backward_naive(dout, cache_naive)):
        assert_close(fast, slow, LAYER_F64, name)


@given(case=conv_cases(small=True))
def test_conv2d_backward_matches_numeric_gradient(case):
    rng, x, w, b = _data(case, np.float64)
    out, cache = conv2d_forward(x, w, b, case.stride, case.padding)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)

    def conv(_):
        return conv2d_forward(x, w, b, case.stride, case.padding)[0]

    assert_close(dx, numeric_gradient(conv, x, dout), NUMERIC_GRAD, "dx")
    assert_close(dw, numeric_gradient(conv, w, dout), NUMERIC_GRAD, "dw")
    assert_close(db, numeric_gradient(conv, b, dout), NUMERIC_GRAD, "db")


def test_output_size_uses_floor_division():
    # 7 + 2*1 - 3 = 6 is not a multiple of stride 4: the last partial step is dropped.
    x = np.zeros((1, 1, 7, 7))
    out, _ = conv2d_forward(x, np.zeros((2, 1, 3, 3)), np.zeros(2), stride=4, padding=1)
    assert out.shape == (1, 2, 2, 2)


def test_cross_correlation_not_convolution():
    # An asymmetric kernel on a single impulse: cross-correlation reproduces the kernel flipped.
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    out, _ = conv2d_forward(x, w, np.zeros(1), padding=1)
    np.testing.assert_array_equal(out[0, 0], w[0, 0, ::-1, ::-1])


@given(case=conv_cases(), dtype=st.sampled_from(DTYPES))
def test_inputs_are_not_modified(case, dtype):
    _, x, w, b = _data(case, dtype)
    copies = [a.copy() for a in (x, w, b)]
    out, cache = conv2d_forward(x, w, b, case.stride, case.padding)
    conv2d_backward(np.ones_like(out), cache)
    for before, after in zip(copies, (x, w, b)):
        np.testing.assert_array_equal(before, after)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------

GOOD_X = np.zeros((2, 3, 8, 8))
GOOD_W = np.zeros((4, 3, 3, 3))
GOOD_B = np.zeros(4)


@pytest.mark.parametrize("forward", [conv2d_forward, conv2d_forward_naive])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.zeros((3, 8, 8))}, r"x must have shape \(N, C, H, W\) \(4 dimensions\), got shape \(3, 8, 8\)"),
        ({"w": np.zeros((4, 3, 3))}, r"w must have shape \(F, C, KH, KW\)"),
        ({"w": np.zeros((4, 5, 3, 3))}, r"channel mismatch: x has C = 3.*w must have shape \(F, 3, KH, KW\)"),
        ({"b": np.zeros(5)}, r"b must have shape \(F,\).* = \(4,\), got \(5,\)"),
        ({"b": np.zeros((4, 1))}, r"b must have shape \(F,\)"),
        ({"w": np.zeros((4, 3, 9, 3))}, r"kernel 9x3 is larger than the padded input 8x8"),
        ({"w": np.zeros((4, 3, 11, 3)), "padding": 1}, r"kernel 11x3 is larger than the padded input 10x10"),
        ({"stride": 0}, r"stride must be an integer >= 1, got 0"),
        ({"stride": -2}, r"stride must be an integer >= 1"),
        ({"stride": 1.5}, r"stride must be an integer >= 1, got 1.5"),
        ({"stride": True}, r"stride must be an integer >= 1"),
        ({"stride": (1, 2, 3)}, r"stride must be an int or a pair"),
        ({"padding": -1}, r"padding must be an integer >= 0, got -1"),
        ({"padding": (0, -1)}, r"padding must be an integer >= 0"),
        ({"x": np.zeros((2, 3, 8, 8), dtype=np.int64)}, r"x must be float32 or float64"),
        ({"x": [[[[0.0]]]]}, r"x must be a NumPy array of shape \(N, C, H, W\)"),
        ({"w": np.zeros((4, 3, 3, 3), dtype=np.float32)}, r"w has dtype float32 but x has dtype float64"),
    ],
)
def test_bad_input_raises_value_error(forward, kwargs, message):
    args = {"x": GOOD_X, "w": GOOD_W, "b": GOOD_B, "stride": 1, "padding": 0} | kwargs
    with pytest.raises(ValueError, match=r"^conv2d(_naive)?: " + message):
        forward(**args)


@pytest.mark.parametrize(("forward", "backward"), [(conv2d_forward, conv2d_backward), (conv2d_forward_naive, conv2d_backward_naive)])
def test_backward_rejects_wrongly_shaped_gradient(forward, backward):
    out, cache = forward(GOOD_X, GOOD_W, GOOD_B)
    with pytest.raises(ValueError, match=r"dout must have shape \(N, F, H_out, W_out\).*\(2, 4, 6, 6\)"):
        backward(np.zeros((2, 4, 6, 5)), cache)
    with pytest.raises(ValueError, match=r"dout must have shape \(N, F, H_out, W_out\)"):
        backward(np.zeros((4, 6, 6)), cache)
