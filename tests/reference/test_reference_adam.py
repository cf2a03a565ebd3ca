"""reference.adam against torch.optim.Adam: several steps on a few random parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from reference.adam import AdamState, adam_step
from strategies import DTYPES, Agreement, check_errors, compare_with_torch, seeds
from tolerances import LAYER_F64, assert_close

PARAM_SHAPES = {"conv.weight": (4, 3, 3, 3), "conv.bias": (4,), "fc.weight": (5, 7), "bn.weight": (7,)}

hyperparameters = st.fixed_dictionaries(
    {
        "lr": st.one_of(st.just(1e-3), st.floats(1e-5, 1e-1)),
        "betas": st.one_of(st.just((0.9, 0.999)), st.tuples(st.floats(0.0, 0.99), st.floats(0.0, 0.9999))),
        "eps": st.one_of(st.just(1e-8), st.floats(1e-10, 1e-3)),
        "weight_decay": st.one_of(st.just(0.0), st.floats(0.0, 0.1)),
    }
)


def adam_errors(seed: int, dtype, steps: int, hyper: dict, skip_every: int = 0) -> dict[str, Agreement]:
    """Run ``steps`` Adam steps on both sides and compare the final parameters.

    With ``skip_every = k > 0`` the parameter ``fc.weight`` gets no gradient on every k-th
    step (absent from ``grads`` here, ``grad = None`` for torch), which tests the
    per-parameter step count.
    """
    rng = np.random.default_rng(seed)
    start = {name: rng.standard_normal(shape).astype(dtype) for name, shape in PARAM_SHAPES.items()}
    grad_steps = []
    for step in range(1, steps + 1):
        grads = {name: rng.standard_normal(shape).astype(dtype) for name, shape in PARAM_SHAPES.items()}
        if skip_every and step % skip_every == 0:
            del grads["fc.weight"]
        grad_steps.append(grads)

    params = {name: p.copy() for name, p in start.items()}
    state = AdamState()
    for grads in grad_steps:
        assert adam_step(params, grads, state, **hyper) is params

    def run_torch(torch_dtype):
        torch_params = {name: torch.tensor(p, dtype=torch_dtype, requires_grad=True) for name, p in start.items()}
        optimiser = torch.optim.Adam(torch_params.values(), **hyper)
        for grads in grad_steps:
            optimiser.zero_grad(set_to_none=True)
            for name, g in grads.items():
                torch_params[name].grad = torch.tensor(g, dtype=torch_dtype)
            optimiser.step()
        return {name: p.detach().numpy() for name, p in torch_params.items()}

    return compare_with_torch(params, run_torch, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(seed=seeds, steps=st.integers(1, 8), hyper=hyperparameters)
def test_adam_matches_torch(seed, steps, hyper, dtype):
    check_errors("adam", dtype, adam_errors(seed, dtype, steps, hyper))


@given(seed=seeds, skip_every=st.integers(2, 3))
def test_step_count_is_per_parameter_like_torch(seed, skip_every):
    hyper = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    check_errors("adam (skipped gradients)", np.float64, adam_errors(seed, np.float64, 6, hyper, skip_every))


def test_defaults_are_torchs():
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 4))}
    grads = {"w": rng.standard_normal((3, 4))}
    wt = torch.tensor(params["w"], requires_grad=True)
    optimiser = torch.optim.Adam([wt])  # torch's defaults
    state = AdamState()
    for _ in range(3):
        wt.grad = torch.tensor(grads["w"])
        optimiser.step()
        adam_step(params, grads, state)  # ours
    assert_close(params["w"], wt.detach().numpy(), LAYER_F64, "w")
    assert state.step == {"w": 3}


def test_update_is_in_place():
    w = np.ones(3)
    params = {"w": w}
    adam_step(params, {"w": np.ones(3)}, AdamState(), lr=0.5)
    assert params["w"] is w
    # First step: m_hat = g, v_hat = g^2, so the move is lr * g / (|g| + eps) = 0.5 / (1 + 1e-8).
    assert_close(w, np.full(3, 1 - 0.5 / (1 + 1e-8)), LAYER_F64, "w")


@pytest.mark.parametrize(
    ("grads", "kwargs", "message"),
    [
        ({"nope": np.ones(3)}, {}, r"gradients for unknown parameters \['nope'\]"),
        ({"w": np.ones(4)}, {}, r"grads\['w'\] has shape \(4,\), its parameter has \(3,\)"),
        ({"w": np.ones(3, dtype=np.float32)}, {}, r"grads\['w'\] has dtype float32 but params\['w'\] has dtype float64"),
        ({"w": np.ones(3)}, {"betas": (1.0, 0.999)}, r"invalid beta1 = 1.0"),
        ({"w": np.ones(3)}, {"lr": -1e-3}, r"invalid lr = -0.001"),
        ({"w": np.ones(3)}, {"weight_decay": -0.1}, r"invalid weight_decay"),
    ],
)
def test_bad_input_raises_value_error(grads, kwargs, message):
    with pytest.raises(ValueError, match=r"^adam_step: " + message):
        adam_step({"w": np.ones(3)}, grads, AdamState(), **kwargs)


def test_a_bad_gradient_changes_nothing():
    # Every gradient is checked before the first update, so a bad one anywhere in grads leaves
    # the parameters and the state as they were (here "b" comes after the good "a").
    params = {"a": np.ones(3), "b": np.ones(2)}
    state = AdamState()
    with pytest.raises(ValueError, match=r"^adam_step: grads\['b'\] has shape \(5,\)"):
        adam_step(params, {"a": np.ones(3), "b": np.ones(5)}, state)
    np.testing.assert_array_equal(params["a"], np.ones(3))
    assert state == AdamState()
