"""reference.batchnorm against torch.nn.functional.batch_norm: outputs, input/gamma/beta
gradients (random upstream gradient), running statistics over several steps, eval mode,
central differences and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from reference.batchnorm import batchnorm_backward, batchnorm_forward
from reference.gradcheck import numeric_gradient
from strategies import DTYPES, Agreement, BatchNormCase, batchnorm_cases, batchnorm_min_values, check_errors, compare_with_torch
from tolerances import LAYER_F64, NUMERIC_GRAD, assert_close


def _channel_signs(rng, C: int) -> np.ndarray:
    """One sign per channel, shared by its running mean and the offsets of its batches."""
    return rng.choice([-1.0, 1.0], C)


def _params(rng, signs, dtype):
    C = len(signs)
    gamma = rng.uniform(0.5, 2.0, C).astype(dtype) * rng.choice([-1, 1], C).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    running_mean = (signs * rng.uniform(0.5, 2.0, C)).astype(dtype)
    running_var = rng.uniform(0.5, 2.0, C).astype(dtype)
    return gamma, beta, running_mean, running_var


def _input(rng, shape, signs, dtype):
    """A batch whose channels have their own offsets and scales (so the statistics matter).

    A channel's offset has the sign of its running mean and is large against the spread of
    a batch mean, so the running-mean update ``(1 - m) * old + m * new`` adds numbers of one
    sign: a running mean that cancels to almost zero would make its float32 relative error
    a measure of rounding noise (ours and torch's alike), not of the update rule.
    """
    per_channel = (len(signs),) + (1,) * (len(shape) - 2)
    offset = signs.reshape(per_channel) * rng.uniform(1.5, 3.0, per_channel)
    scale = rng.uniform(0.5, 1.5, per_channel)
    return (offset + scale * rng.standard_normal(shape)).astype(dtype)


def batchnorm_errors(case: BatchNormCase, dtype, *, training: bool, steps: int = 3) -> dict[str, Agreement]:
    """``steps`` consecutive batches through NumPy and torch batch norm, compared step by step.

    The running statistics are carried from step to step on both sides, so an error in the
    update (momentum direction, biased vs unbiased variance) compounds and shows. Keys are
    ``"<quantity> (step k)"``.
    """
    rng = np.random.default_rng(case.seed)
    signs = _channel_signs(rng, case.x_shape[1])
    gamma, beta, running_mean, running_var = _params(rng, signs, dtype)
    batches = [_input(rng, case.x_shape, signs, dtype) for _ in range(steps)]
    upstream = [rng.standard_normal(case.x_shape).astype(dtype) for _ in range(steps)]  # random upstream gradients
    start_mean, start_var = running_mean, running_var

    ours = {}
    for k, (x, dout) in enumerate(zip(batches, upstream), start=1):
        before = [a.copy() for a in (x, gamma, beta, running_mean, running_var)]
        out, cache, (new_mean, new_var) = batchnorm_forward(
            x, gamma, beta, running_mean, running_var, training=training, momentum=case.momentum, eps=case.eps
        )
        dx, dgamma, dbeta = batchnorm_backward(dout, cache)
        for a, b in zip(before, (x, gamma, beta, running_mean, running_var)):
            np.testing.assert_array_equal(a, b)  # no argument is modified
        running_mean, running_var = new_mean, new_var
        results = {"forward": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta, "running_mean": new_mean, "running_var": new_var}
        ours.update({f"{name} (step {k})": value for name, value in results.items()})

    def run_torch(torch_dtype):
        as_torch = lambda a, **kw: torch.tensor(a, dtype=torch_dtype, **kw)  # noqa: E731
        gt, bt = as_torch(gamma, requires_grad=True), as_torch(beta, requires_grad=True)
        mean_t, var_t = as_torch(start_mean), as_torch(start_var)
        results = {}
        for k, (x, dout) in enumerate(zip(batches, upstream), start=1):
            gt.grad = bt.grad = None
            xt = as_torch(x, requires_grad=True)
            out_t = F.batch_norm(xt, mean_t, var_t, gt, bt, training=training, momentum=case.momentum, eps=case.eps)
            out_t.backward(as_torch(dout))  # F.batch_norm updated mean_t, var_t in place
            step = {
                "forward": out_t.detach().numpy(),
                "dx": xt.grad.numpy(),
                "dgamma": gt.grad.numpy(),
                "dbeta": bt.grad.numpy(),
                "running_mean": mean_t.numpy().copy(),
                "running_var": var_t.numpy().copy(),
            }
            results.update({f"{name} (step {k})": value for name, value in step.items()})
        return results

    return compare_with_torch(ours, run_torch, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_training_mode_matches_torch_over_several_steps(data, dtype):
    case = data.draw(batchnorm_cases(min_values=batchnorm_min_values(dtype)), label="case")
    check_errors(f"batchnorm{len(case.x_shape) - 2 or 1}d train", dtype, batchnorm_errors(case, dtype, training=True))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_eval_mode_matches_torch(data, dtype):
    case = data.draw(batchnorm_cases(min_values=batchnorm_min_values(dtype)), label="case")
    check_errors(f"batchnorm{len(case.x_shape) - 2 or 1}d eval", dtype, batchnorm_errors(case, dtype, training=False))


@pytest.mark.parametrize("ndim", [2, 4])
def test_both_layouts_are_drawn(ndim):
    # The strategy must produce 2-D and 4-D inputs, or half of the tests above test nothing.
    seen = []

    @given(case=batchnorm_cases())
    def collect(case):
        seen.append(len(case.x_shape))

    collect()
    assert ndim in seen


@given(case=batchnorm_cases(small=True), training=st.booleans())
def test_backward_matches_numeric_gradient(case, training):
    rng = np.random.default_rng(case.seed)
    signs = _channel_signs(rng, case.x_shape[1])
    gamma, beta, running_mean, running_var = _params(rng, signs, np.float64)
    x = _input(rng, case.x_shape, signs, np.float64)

    def bn(_):
        return batchnorm_forward(
            x, gamma, beta, running_mean, running_var, training=training, momentum=case.momentum, eps=case.eps
        )[0]

    out, cache, _ = batchnorm_forward(
        x, gamma, beta, running_mean, running_var, training=training, momentum=case.momentum, eps=case.eps
    )
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    assert_close(dx, numeric_gradient(bn, x, dout), NUMERIC_GRAD, "dx")
    assert_close(dgamma, numeric_gradient(bn, gamma, dout), NUMERIC_GRAD, "dgamma")
    assert_close(dbeta, numeric_gradient(bn, beta, dout), NUMERIC_GRAD, "dbeta")


def test_running_statistics_conventions_by_hand():
    # One channel, values 1, 2, 3, 6: mean 3, biased variance 3.5, unbiased 14/3.
    x = np.array([[1.0], [2.0], [3.0], [6.0]])
    one, zero = np.ones(1), np.zeros(1)
    out, _, (mean, var) = batchnorm_forward(x, one, zero, zero, one, training=True, momentum=0.25, eps=1e-12)
    assert_close(mean, [0.75 * 0 + 0.25 * 3.0], LAYER_F64, "running mean")  # momentum is the new batch's weight
    assert_close(var, [0.75 * 1 + 0.25 * 14 / 3], LAYER_F64, "running var")  # unbiased variance in the estimate
    assert_close(out[:, 0], (x[:, 0] - 3.0) / np.sqrt(3.5 + 1e-12), LAYER_F64, "out")  # biased variance to normalise


def test_eval_mode_returns_running_statistics_unchanged():
    rng = np.random.default_rng(0)
    signs = _channel_signs(rng, 4)
    gamma, beta, running_mean, running_var = _params(rng, signs, np.float64)
    saved = running_mean.copy(), running_var.copy()
    _, _, (mean, var) = batchnorm_forward(_input(rng, (5, 4, 3, 3), signs, np.float64), gamma, beta, running_mean, running_var, training=False)
    np.testing.assert_array_equal(mean, saved[0])
    np.testing.assert_array_equal(var, saved[1])
    np.testing.assert_array_equal(running_mean, saved[0])


def test_training_does_not_modify_the_running_statistics_passed_in():
    rng = np.random.default_rng(1)
    signs = _channel_signs(rng, 3)
    gamma, beta, running_mean, running_var = _params(rng, signs, np.float64)
    saved = running_mean.copy(), running_var.copy()
    _, _, (mean, var) = batchnorm_forward(_input(rng, (6, 3), signs, np.float64), gamma, beta, running_mean, running_var, training=True)
    np.testing.assert_array_equal(running_mean, saved[0])
    np.testing.assert_array_equal(running_var, saved[1])
    assert not np.array_equal(mean, saved[0])


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def _good(C=3):
    return {
        "x": np.zeros((4, C, 2, 2)),
        "gamma": np.ones(C),
        "beta": np.zeros(C),
        "running_mean": np.zeros(C),
        "running_var": np.ones(C),
        "training": True,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x": np.zeros((4, 3, 2))}, r"x must have shape \(N, C\) or \(N, C, H, W\) \(2 or 4 dimensions\), got shape \(4, 3, 2\)"),
        ({"x": np.zeros(3)}, r"x must have shape \(N, C\) or \(N, C, H, W\)"),
        ({"gamma": np.ones(4)}, r"gamma must have shape \(C,\) with C = x.shape\[1\].* = \(3,\), got \(4,\)"),
        ({"beta": np.zeros((3, 1))}, r"beta must have shape \(C,\)"),
        ({"running_mean": np.zeros(2)}, r"running_mean must have shape \(C,\).*got \(2,\)"),
        ({"running_var": np.ones(3, dtype=np.float32)}, r"running_var has dtype float32 but x has dtype float64"),
        ({"x": np.zeros((1, 3, 1, 1))}, r"training mode needs more than one value per channel.*\(1, 3, 1, 1\)"),
        ({"x": np.zeros((1, 3))}, r"training mode needs more than one value per channel"),
        ({"momentum": 1.5}, r"momentum must be a number in \[0, 1\]"),
        ({"momentum": -0.1}, r"momentum must be a number in \[0, 1\]"),
        ({"eps": 0.0}, r"eps must be a number > 0"),
    ],
)
def test_bad_input_raises_value_error(change, message):
    args = _good() | change
    with pytest.raises(ValueError, match=r"^batchnorm: " + message):
        batchnorm_forward(**args)


def test_a_single_sample_is_fine_in_eval_mode():
    out, _, _ = batchnorm_forward(**(_good() | {"x": np.ones((1, 3)), "training": False}))
    assert out.shape == (1, 3)


def test_backward_rejects_wrongly_shaped_gradient():
    _, cache, _ = batchnorm_forward(**_good())
    with pytest.raises(ValueError, match=r"^batchnorm_backward: dout must have shape the forward input's shape = \(4, 3, 2, 2\)"):
        batchnorm_backward(np.zeros((4, 3, 2, 1)), cache)
