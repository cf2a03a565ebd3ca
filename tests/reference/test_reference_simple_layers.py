"""reference.relu, .linear, .dropout, .flatten and .loss against torch, central differences
and bad input."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from reference.dropout import dropout_backward, dropout_forward
from reference.flatten import flatten_backward, flatten_forward
from reference.gradcheck import numeric_gradient
from reference.linear import linear_backward, linear_forward
from reference.loss import softmax_cross_entropy
from reference.relu import relu_backward, relu_forward
from strategies import DTYPES, Agreement, check_errors, compare_with_torch, layer_tolerance, seeds
from tolerances import LAYER_F64, NUMERIC_GRAD, assert_close

dtype_params = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)

#: Activation shapes: (N, D) after a linear layer or (N, C, H, W) after a convolution.
activation_shapes = st.one_of(
    st.tuples(st.integers(1, 8), st.integers(1, 64)),
    st.tuples(st.integers(1, 8), st.integers(1, 16), st.integers(1, 20), st.integers(1, 20)),
)
small_shapes = st.one_of(
    st.tuples(st.integers(1, 4), st.integers(1, 6)),
    st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
)


def _check_dtype(dtype, *arrays):
    for a in arrays:
        assert a.dtype == dtype, f"dtype changed from {np.dtype(dtype)} to {a.dtype}"


# ------------------------------------------------------------------------------------------
# ReLU
# ------------------------------------------------------------------------------------------


def relu_errors(shape, seed, dtype) -> dict[str, Agreement]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.1] = 0  # exact zeros: the derivative there is 0, as in torch
    out, cache = relu_forward(x)
    dout = rng.standard_normal(shape).astype(dtype)
    dx = relu_backward(dout, cache)

    def run_torch(torch_dtype):
        xt = torch.tensor(x, dtype=torch_dtype, requires_grad=True)
        out_t = F.relu(xt)
        out_t.backward(torch.tensor(dout, dtype=torch_dtype))
        return {"forward": out_t.detach().numpy(), "dx": xt.grad.numpy()}

    return compare_with_torch({"forward": out, "dx": dx}, run_torch, dtype)


@dtype_params
@given(shape=activation_shapes, seed=seeds)
def test_relu_matches_torch(shape, seed, dtype):
    check_errors("relu", dtype, relu_errors(shape, seed, dtype))


@given(shape=small_shapes, seed=seeds)
def test_relu_backward_matches_numeric_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x += np.where(x >= 0, 0.01, -0.01)  # keep 1e-2 away from the kink at 0
    out, cache = relu_forward(x)
    dout = rng.standard_normal(shape)
    numeric = numeric_gradient(lambda _: relu_forward(x)[0], x, dout)
    assert_close(relu_backward(dout, cache), numeric, NUMERIC_GRAD, "dx")


# ------------------------------------------------------------------------------------------
# Linear
# ------------------------------------------------------------------------------------------

linear_shapes = st.tuples(st.integers(1, 8), st.integers(1, 64), st.integers(1, 32))  # (N, D_in, D_out)


def linear_errors(shape, seed, dtype) -> dict[str, Agreement]:
    N, D_in, D_out = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D_in)).astype(dtype)
    w = rng.standard_normal((D_out, D_in)).astype(dtype)
    b = rng.standard_normal(D_out).astype(dtype)
    out, cache = linear_forward(x, w, b)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = linear_backward(dout, cache)

    def run_torch(torch_dtype):
        xt, wt, bt = (torch.tensor(a, dtype=torch_dtype, requires_grad=True) for a in (x, w, b))
        out_t = F.linear(xt, wt, bt)
        out_t.backward(torch.tensor(dout, dtype=torch_dtype))
        return {"forward": out_t.detach().numpy(), "dx": xt.grad.numpy(), "dw": wt.grad.numpy(), "db": bt.grad.numpy()}

    return compare_with_torch({"forward": out, "dx": dx, "dw": dw, "db": db}, run_torch, dtype)


@dtype_params
@given(shape=linear_shapes, seed=seeds)
def test_linear_matches_torch(shape, seed, dtype):
    check_errors("linear", dtype, linear_errors(shape, seed, dtype))


@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5)), seed=seeds)
def test_linear_backward_matches_numeric_gradient(shape, seed):
    N, D_in, D_out = shape
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, D_in)), rng.standard_normal((D_out, D_in)), rng.standard_normal(D_out)
    out, cache = linear_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = linear_backward(dout, cache)

    def linear(_):
        return linear_forward(x, w, b)[0]

    assert_close(dx, numeric_gradient(linear, x, dout), NUMERIC_GRAD, "dx")
    assert_close(dw, numeric_gradient(linear, w, dout), NUMERIC_GRAD, "dw")
    assert_close(db, numeric_gradient(linear, b, dout), NUMERIC_GRAD, "db")


@pytest.mark.parametrize(
    ("x", "w", "b", "message"),
    [
        (np.zeros((2, 3, 4)), np.zeros((5, 12)), np.zeros(5), r"x must have shape \(N, D_in\) \(2 dimensions\), got shape \(2, 3, 4\)"),
        (np.zeros((2, 4)), np.zeros((5, 3)), np.zeros(5), r"x has D_in = 4 features.*w must have shape \(D_out, 4\)"),
        (np.zeros((2, 4)), np.zeros((5, 4)), np.zeros(4), r"b must have shape \(D_out,\).* = \(5,\), got \(4,\)"),
        (np.zeros((2, 4)), np.zeros(4), np.zeros(1), r"w must have shape \(D_out, D_in\)"),
        (np.zeros((2, 4)), np.zeros((5, 4)), np.zeros(5, dtype=np.float32), r"b has dtype float32 but x has dtype float64"),
    ],
)
def test_linear_bad_input_raises_value_error(x, w, b, message):
    with pytest.raises(ValueError, match=r"^linear: " + message):
        linear_forward(x, w, b)


# ------------------------------------------------------------------------------------------
# Dropout
# ------------------------------------------------------------------------------------------

drop_probabilities = st.one_of(st.just(0.0), st.just(0.2), st.floats(0.0, 0.95))


def dropout_errors(shape, p, seed, dtype) -> dict[str, Agreement]:
    """NumPy dropout with a given keep-mask against torch's ``x * mask / (1 - p)``, with autograd."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    keep = rng.random(shape) >= p
    out, cache = dropout_forward(x, p, training=True, mask=keep)
    dout = rng.standard_normal(shape).astype(dtype)
    dx = dropout_backward(dout, cache)

    def run_torch(torch_dtype):
        xt = torch.tensor(x, dtype=torch_dtype, requires_grad=True)
        out_t = xt * torch.tensor(keep) / (1 - p)
        out_t.backward(torch.tensor(dout, dtype=torch_dtype))
        return {"forward": out_t.detach().numpy(), "dx": xt.grad.numpy()}

    return compare_with_torch({"forward": out, "dx": dx}, run_torch, dtype)


@dtype_params
@given(shape=activation_shapes, p=drop_probabilities, seed=seeds)
def test_dropout_with_a_shared_mask_matches_torch(shape, p, seed, dtype):
    check_errors("dropout", dtype, dropout_errors(shape, p, seed, dtype))


@given(p=drop_probabilities, seed=seeds)
def test_dropout_keep_rate_is_within_binomial_bounds(p, seed):
    n = 20_000
    x = np.ones((n // 100, 100))
    out, _ = dropout_forward(x, p, training=True, rng=np.random.default_rng(seed))
    kept = np.count_nonzero(out)
    expected, sd = n * (1 - p), np.sqrt(n * p * (1 - p))
    assert abs(kept - expected) <= 5 * sd + 1e-9, f"kept {kept} of {n}, expected {expected:.0f} +- {sd:.0f} (p = {p})"
    kept_values = out[out != 0]
    assert_close(kept_values, np.full(kept_values.shape, 1 / (1 - p)), LAYER_F64, "kept values")  # scaled up


def test_dropout_rng_draws_reproducibly_and_differently_per_call():
    x = np.ones((8, 50))
    a, _ = dropout_forward(x, 0.5, training=True, rng=np.random.default_rng(3))
    b, _ = dropout_forward(x, 0.5, training=True, rng=np.random.default_rng(3))
    rng = np.random.default_rng(3)
    c, _ = dropout_forward(x, 0.5, training=True, rng=rng)
    d, _ = dropout_forward(x, 0.5, training=True, rng=rng)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(c, d)


@dtype_params
@given(shape=activation_shapes, p=drop_probabilities, seed=seeds)
def test_dropout_eval_mode_is_the_identity(shape, p, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = dropout_forward(x, p, training=False, rng=rng)
    np.testing.assert_array_equal(out, x)
    dout = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)
    _check_dtype(dtype, out)


@given(shape=small_shapes, p=drop_probabilities, seed=seeds)
def test_dropout_backward_matches_numeric_gradient(shape, p, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    keep = rng.random(shape) >= p
    out, cache = dropout_forward(x, p, training=True, mask=keep)
    dout = rng.standard_normal(shape)
    numeric = numeric_gradient(lambda _: dropout_forward(x, p, training=True, mask=keep)[0], x, dout)
    assert_close(dropout_backward(dout, cache), numeric, NUMERIC_GRAD, "dx")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 1.0}, r"p is the drop probability and must be in \[0, 1\), got 1.0"),
        ({"p": -0.1}, r"p is the drop probability and must be in \[0, 1\), got -0.1"),
        ({"p": 1.5, "training": False}, r"p is the drop probability and must be in \[0, 1\), got 1.5"),
        ({"rng": None}, r"in training mode give exactly one of rng .* or mask .*, got neither"),
        ({"mask": np.ones((4, 5), dtype=bool)}, r"in training mode give exactly one of rng .* or mask .*, got both"),
        ({"rng": None, "mask": np.ones((4, 5))}, r"mask must be a boolean NumPy keep-mask of shape \(4, 5\)"),
        ({"rng": None, "mask": np.ones((5, 4), dtype=bool)}, r"mask must have shape the shape of x = \(4, 5\), got \(5, 4\)"),
        ({"rng": 0}, r"rng must be a np.random.Generator"),
    ],
)
def test_dropout_bad_input_raises_value_error(kwargs, message):
    args = {"x": np.ones((4, 5)), "p": 0.2, "training": True, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(ValueError, match=r"^dropout: " + message):
        dropout_forward(**args)


# ------------------------------------------------------------------------------------------
# Flatten
# ------------------------------------------------------------------------------------------


def flatten_errors(shape, seed, dtype) -> dict[str, Agreement]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = flatten_forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = flatten_backward(dout, cache)
    assert dx.shape == x.shape

    def run_torch(torch_dtype):
        xt = torch.tensor(x, dtype=torch_dtype, requires_grad=True)
        out_t = torch.flatten(xt, 1)
        out_t.backward(torch.tensor(dout, dtype=torch_dtype))
        return {"forward": out_t.detach().numpy(), "dx": xt.grad.numpy()}

    return compare_with_torch({"forward": out, "dx": dx}, run_torch, dtype)


@dtype_params
@given(shape=activation_shapes, seed=seeds)
def test_flatten_matches_torch(shape, seed, dtype):
    check_errors("flatten", dtype, flatten_errors(shape, seed, dtype))


def test_flatten_bad_input():
    with pytest.raises(ValueError, match=r"^flatten: x must have shape \(N, ...\) with at least 2 dimensions"):
        flatten_forward(np.zeros(5))
    _, cache = flatten_forward(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"^flatten_backward: dout must have shape .* = \(2, 48\), got \(2, 47\)"):
        flatten_backward(np.zeros((2, 47)), cache)


# ------------------------------------------------------------------------------------------
# Softmax cross-entropy
# ------------------------------------------------------------------------------------------

loss_shapes = st.tuples(st.integers(1, 8), st.integers(1, 20))  # (N, K)


def exact_loss_and_gradient(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Mean softmax cross-entropy and its gradient in 50-digit arithmetic (mpmath).

    Written so that nothing cancels: with ``e_k = exp(s_k - max)``, ``norm = 1 + rest``
    (``rest``: the sum without the maximum's own 1), the row's loss is
    ``log1p(rest) - (s_y - max)`` and the label's gradient ``p_y - 1 = -(norm - e_y) / norm``
    is summed from the other classes; a loss of 1e-273 keeps its digits.
    """
    N, K = logits.shape
    dlogits = np.empty((N, K))
    with mpmath.workdps(50):
        total = mpmath.mpf(0)
        for n in range(N):
            row = [mpmath.mpf(float(v)) for v in logits[n]]
            top = int(np.argmax(logits[n]))
            exps = [mpmath.exp(v - row[top]) for v in row]
            rest = mpmath.fsum(e for k, e in enumerate(exps) if k != top)
            norm = 1 + rest
            y = int(labels[n])
            total += mpmath.log1p(rest) - (row[y] - row[top])
            for k in range(K):
                if k == y:
                    grad = -mpmath.fsum(e for j, e in enumerate(exps) if j != y) / norm
                else:
                    grad = exps[k] / norm
                dlogits[n, k] = float(grad / N)
        loss = float(total / N)
    return {"loss": np.asarray(loss), "dlogits": dlogits}


def loss_errors(shape, seed, dtype, scale: float = 3.0) -> dict[str, Agreement]:
    """NumPy softmax cross-entropy against ``F.cross_entropy`` and against a 50-digit answer.

    With logits of 1e4 a row whose label is its maximum by a wide margin has a loss like
    1e-20, which torch (in either dtype) rounds to 0; the exact answer tells which is right.
    """
    N, K = shape
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal(shape)).astype(dtype)
    labels = rng.integers(0, K, N)
    loss, dlogits = softmax_cross_entropy(logits, labels)

    def run_torch(torch_dtype):
        lt = torch.tensor(logits, dtype=torch_dtype, requires_grad=True)
        loss_t = F.cross_entropy(lt, torch.tensor(labels))
        loss_t.backward()
        return {"loss": loss_t.detach().numpy(), "dlogits": lt.grad.numpy()}

    exact = exact_loss_and_gradient(logits, labels)
    return compare_with_torch({"loss": np.asarray(loss), "dlogits": dlogits}, run_torch, dtype, exact)


@dtype_params
@given(shape=loss_shapes, seed=seeds)
def test_loss_matches_torch(shape, seed, dtype):
    check_errors("softmax_cross_entropy", dtype, loss_errors(shape, seed, dtype))


@dtype_params
@given(shape=loss_shapes, seed=seeds)
def test_loss_is_stable_with_huge_logits(shape, seed, dtype):
    errors = loss_errors(shape, seed, dtype, scale=1e4)  # exp(1e4) overflows without the shift
    check_errors("softmax_cross_entropy (logits ~1e4)", dtype, errors)
    logits = np.full(shape, 1e4, dtype=dtype)
    loss, dlogits = softmax_cross_entropy(logits, np.zeros(shape[0], dtype=np.int64))
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    assert_close(loss, np.log(shape[1]), layer_tolerance(dtype), "loss")  # all classes equally likely


@dtype_params
def test_confident_correct_prediction_keeps_its_small_loss(dtype):
    # p(label) = 1 / (1 + 2 e^-30): loss = log1p(2 e^-30) ~ 1.9e-13, d loss / d s_label = p - 1 ~ -1.9e-13.
    # Computed naively, log(1 + 1.9e-13) and p - 1 round to 0 (even in float64 the digits are gone).
    logits = np.array([[30.0, 0.0, 0.0]], dtype=dtype)
    loss, dlogits = softmax_cross_entropy(logits, np.array([0]))
    rest = 2 * np.exp(-30.0)
    assert_close(loss, np.log1p(rest), layer_tolerance(dtype), "loss")
    assert_close(dlogits[0, 0], -rest / (1 + rest), layer_tolerance(dtype), "dlogits[label]")


@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 6)), seed=seeds)
def test_loss_gradient_matches_numeric_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(shape)
    labels = rng.integers(0, shape[1], shape[0])
    _, dlogits = softmax_cross_entropy(logits, labels)
    numeric = numeric_gradient(lambda _: softmax_cross_entropy(logits, labels)[0], logits)
    assert_close(dlogits, numeric, NUMERIC_GRAD, "dlogits")


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (np.zeros((3, 4)), np.array([0, 4, 1]), r"labels must be class indices in \[0, 4\).*got out-of-range values \[4\]"),
        (np.zeros((3, 4)), np.array([0, -1, 1]), r"labels must be class indices in \[0, 4\).*\[-1\]"),
        (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), r"labels must be an integer NumPy array of shape \(N,\) = \(3,\)"),
        (np.zeros((3, 4)), np.array([0, 1]), r"labels must have shape \(N,\) = \(3,\).*got \(2,\)"),
        (np.zeros((3, 4)), np.array([[0, 1, 2]]), r"labels must have shape \(N,\) = \(3,\)"),
        (np.zeros(4), np.array([0]), r"logits must have shape \(N, K\) \(2 dimensions\), got shape \(4,\)"),
        (np.zeros((0, 4)), np.zeros(0, dtype=np.int64), r"logits \(N, K\) = \(0, 4\) is empty"),
    ],
)
def test_loss_bad_input_raises_value_error(logits, labels, message):
    with pytest.raises(ValueError, match=r"^softmax_cross_entropy: " + message):
        softmax_cross_entropy(logits, labels)


def test_relu_bad_input():
    with pytest.raises(ValueError, match=r"^relu: x must be float32 or float64"):
        relu_forward(np.zeros((2, 3), dtype=np.int64))
    _, cache = relu_forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^relu_backward: dout must have shape the forward input's shape = \(2, 3\)"):
        relu_backward(np.zeros(3), cache)
