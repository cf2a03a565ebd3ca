"""The NumPy network against the PyTorch model, with the same weights.

Weights travel the way a user would move them: the torch model's ``state_dict`` is written
to an ``.npz`` file with ``np.savez`` and read back with :func:`reference.network.load_npz`.
Everything is float64 (``model.double()``), batch 4, so the comparisons are tight and the
whole module runs in a few seconds.

The torch model gets random BatchNorm parameters and running statistics first: with the
default init (gamma 1, beta 0, mean 0, var 1) a mix-up of gamma and beta, or of the running
mean and variance, would go unnoticed.

Dropout masks: ``nn.Dropout`` draws its mask inside the module and does not expose it, and
it cannot be read back from the output either (its inputs contain exact zeros after ReLU,
so "output == 0" does not tell dropped from kept). So the test draws the keep-masks itself
and gives the same masks to both sides: to NumPy through ``dropout_masks``, to torch by
replacing the two ``nn.Dropout`` modules with :class:`MaskedDropout`, which applies a given
mask. :func:`test_masked_dropout_is_torch_dropout` shows that this module computes exactly
what ``nn.Dropout`` computes for the mask it drew.

Biases in front of a training-mode BatchNorm: every conv and linear layer here feeds a
BatchNorm, which subtracts the batch mean per channel, so a constant added by the bias
cancels and the exact gradient of every bias is **zero**. Both implementations return
rounding noise (~1e-17) there, which no relative comparison can match; for those arrays the
test measures the error against the scale of the same layer's weight gradient instead,
which checks that both are zero to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cifar_alexnet.model import AlexNet
from reference import network
from reference.adam import AdamState
from reference.architecture import LAYERS, build_layers
from tolerances import NETWORK_GRAD_F64, NETWORK_LOGITS_F64, assert_close, rel_error

BATCH = 4
P_DROP = 0.2
TOTAL_PARAMETERS = 14_869_598  # the write-up's "Total params" (its torchstat output)


class MaskedDropout(nn.Module):
    """Inverted dropout with a given boolean keep-mask: ``x * mask / (1 - p)``, as ``nn.Dropout``."""

    def __init__(self, keep: torch.Tensor, p: float):
        super().__init__()
        self.keep, self.p = keep, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x * (self.keep.to(x.dtype) / (1.0 - self.p))  # scaled mask first, as torch does


def random_torch_model(seed: int) -> AlexNet:
    """A float64 AlexNet with random weights AND random BatchNorm parameters and statistics."""
    torch.manual_seed(seed)
    model = AlexNet()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
                module.num_batches_tracked.fill_(3)
    return model.double()


def export_to_reference(model: nn.Module, tmp_path) -> dict:
    """torch state_dict -> np.savez -> reference.network.load_npz."""
    path = tmp_path / "weights.npz"
    np.savez(path, **{key: value.detach().cpu().numpy() for key, value in model.state_dict().items()})
    return network.load_npz(path)


def random_batch(seed: int, n: int = BATCH):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 32, 32))
    labels = rng.integers(0, 10, size=n)
    masks = {
        "classifier.0": rng.random((n, 4096)) >= P_DROP,
        "classifier.4": rng.random((n, 2048)) >= P_DROP,
    }
    return x, labels, masks


def use_masks(model: AlexNet, masks: dict) -> None:
    model.classifier[0] = MaskedDropout(torch.from_numpy(masks["classifier.0"]), P_DROP)
    model.classifier[4] = MaskedDropout(torch.from_numpy(masks["classifier.4"]), P_DROP)


def biases_in_front_of_batchnorm() -> set[str]:
    """Keys of the biases whose layer output goes straight into a BatchNorm."""
    keys = set()
    for layer, following in zip(LAYERS, LAYERS[1:]):
        if layer.kind in ("conv", "linear") and following.kind in ("bn2d", "bn1d"):
            keys.add(f"{layer.key}.bias")
    return keys


def gradient_errors(ours: dict, torch_grads: dict) -> dict[str, float]:
    """Relative error per parameter; biases feeding a BatchNorm measured on their layer's scale."""
    zero_by_construction = biases_in_front_of_batchnorm()
    errors = {}
    for key, expected in torch_grads.items():
        if key in zero_by_construction:
            weight_key = key[: -len("bias")] + "weight"
            scale = np.abs(torch_grads[weight_key]).max()
            errors[key] = float(np.abs(ours[key] - expected).max() / scale)
        else:
            errors[key] = rel_error(ours[key], expected)
    return errors


def test_state_layout_is_the_torch_state_dict():
    model = AlexNet()
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    layout = network.state_layout()
    assert list(layout) == list(expected)  # same keys, same order
    assert layout == expected
    learnable = sum(int(np.prod(layout[key])) for key in network.parameter_keys())
    assert learnable == sum(p.numel() for p in model.parameters()) == TOTAL_PARAMETERS


@pytest.mark.parametrize("hidden,num_classes", [(64, 10), (128, 7)])
def test_state_layout_for_other_widths(hidden, num_classes):
    model = AlexNet(num_classes=num_classes, hidden=hidden)
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert network.state_layout(build_layers(hidden=hidden, num_classes=num_classes)) == expected


def test_init_params_follows_torch_default_init():
    params = network.init_params(np.random.default_rng(0), np.float32)
    model = AlexNet()
    for key, value in model.state_dict().items():
        ours = params[key]
        assert ours.shape == tuple(value.shape), key
        if key.endswith("num_batches_tracked"):
            assert ours.dtype == np.int64 and ours == 0
            continue
        assert ours.dtype == np.float32, key
        theirs = value.numpy()
        if np.all(theirs == theirs.flat[0]):  # BatchNorm constants: 1 or 0
            np.testing.assert_array_equal(ours, theirs, err_msg=key)
        else:  # uniform(-bound, bound): same bound (largest |value| within 1 % of it when large)
            fan_in = np.prod(model.state_dict()[key.rsplit(".", 1)[0] + ".weight"].shape[1:])
            bound = np.float32(1 / np.sqrt(fan_in))  # the bound as float32 rounds it, on both sides
            assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound, key
            if ours.size > 1000:
                assert np.abs(ours).max() > 0.99 * bound, key


def test_npz_round_trip(tmp_path):
    model = random_torch_model(0)
    params = export_to_reference(model, tmp_path)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(params[key], value.numpy(), err_msg=key)
    network.save_npz(tmp_path / "again.npz", params)
    again = network.load_npz(tmp_path / "again.npz")
    assert list(again) == list(params)
    for key in params:
        np.testing.assert_array_equal(again[key], params[key], err_msg=key)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []  # no temporary left


def test_npz_without_counters_is_accepted(tmp_path):
    state = {k: v.numpy() for k, v in AlexNet().state_dict().items() if not k.endswith("num_batches_tracked")}
    np.savez(tmp_path / "w.npz", **state)
    params = network.load_npz(tmp_path / "w.npz")
    assert params["features.1.num_batches_tracked"] == 0


def test_load_npz_names_the_problems(tmp_path):
    state = {k: v.numpy() for k, v in AlexNet().state_dict().items()}
    state["features.0.weight"] = np.zeros((64, 3, 5, 5), np.float32)
    del state["classifier.1.bias"]
    state["extra"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "bad.npz", **state)
    with pytest.raises(ValueError) as info:
        network.load_npz(tmp_path / "bad.npz")
    message = str(info.value)
    for expected in ("bad.npz", "classifier.1.bias", "extra", "features.0.weight", "(64, 3, 3, 3)"):
        assert expected in message
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="junk.npz"):
        network.load_npz(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        network.load_npz(tmp_path / "missing.npz")


def test_forward_rejects_bad_input():
    params = network.init_params(np.random.default_rng(0), np.float64)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        network.forward(params, np.zeros((3, 32, 32)), training=False)
    with pytest.raises(ValueError, match="dtype"):
        network.forward(params, np.zeros((2, 3, 32, 32), np.float32), training=False)
    with pytest.raises(ValueError, match="classifier.0"):
        network.forward(params, np.zeros((2, 3, 32, 32)), training=True)
    with pytest.raises(ValueError, match="unknown keys"):
        network.forward(params, np.zeros((2, 3, 32, 32)), training=True, dropout_masks={"features.0": None},
                        rng=np.random.default_rng(0))


def test_masked_dropout_is_torch_dropout():
    """MaskedDropout with the mask nn.Dropout drew gives nn.Dropout's output exactly.

    The input is strictly positive, so here (unlike inside the network) the mask can be read
    back from the output: dropped = output == 0.
    """
    torch.manual_seed(0)
    x = torch.rand(8, 4096, dtype=torch.float64) + 0.1
    dropout = nn.Dropout(P_DROP).train()
    out = dropout(x)
    keep = out != 0
    assert 0.7 < keep.double().mean() < 0.9  # it did drop about p of the values
    masked = MaskedDropout(keep, P_DROP).train()(x)
    assert torch.equal(masked, out)


def test_eval_logits_match_torch(tmp_path):
    model = random_torch_model(1).eval()
    params = export_to_reference(model, tmp_path)
    x, _, _ = random_batch(2)
    logits, _, new_buffers = network.forward(params, x, training=False)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    error = assert_close(logits, expected, NETWORK_LOGITS_F64, "eval-mode logits")
    print(f"\n[network] eval logits, float64: max relative error {error:.2e} (tolerance {NETWORK_LOGITS_F64:.0e})")
    for key, value in new_buffers.items():  # eval mode leaves the running statistics alone
        np.testing.assert_array_equal(value, params[key], err_msg=key)


def test_train_mode_gradients_and_running_stats_match_torch(tmp_path):
    model = random_torch_model(3).train()
    params = export_to_reference(model, tmp_path)
    x, _, masks = random_batch(4)
    use_masks(model, masks)
    upstream = np.random.default_rng(5).standard_normal((BATCH, 10))  # a random dL/dlogits

    logits, cache, new_buffers = network.forward(params, x, training=True, dropout_masks=masks)
    grads = network.backward(upstream, cache)

    torch_logits = model(torch.from_numpy(x))
    torch_logits.backward(torch.from_numpy(upstream))
    torch_grads = {name: p.grad.numpy() for name, p in model.named_parameters()}

    logit_error = assert_close(logits, torch_logits.detach().numpy(), NETWORK_GRAD_F64, "train-mode logits")
    assert list(grads) == list(torch_grads)
    assert sum(g.size for g in grads.values()) == TOTAL_PARAMETERS
    errors = gradient_errors(grads, torch_grads)
    worst = max(errors, key=errors.get)
    print(f"\n[network] train logits: {logit_error:.2e}; gradients of all {TOTAL_PARAMETERS:,} parameters: "
          f"max relative error {errors[worst]:.2e} ({worst}); tolerance {NETWORK_GRAD_F64:.0e}")
    for key, error in errors.items():
        assert error <= NETWORK_GRAD_F64, f"gradient of {key}: relative error {error:.3e}"

    state = model.state_dict()
    for key, value in new_buffers.items():
        if key.endswith("num_batches_tracked"):
            assert int(value) == int(state[key]) == 4, key
        else:
            assert_close(value, state[key].numpy(), NETWORK_GRAD_F64, key)
            assert rel_error(value, params[key]) > 1e-6, f"{key} did not change"


def test_train_step_matches_torch_adam(tmp_path):
    """One step of forward + cross-entropy + backward + Adam, NumPy vs torch.optim.Adam.

    Comparing the parameters after the step needs care, because Adam's first step is
    ``lr * g / (|g| + eps)`` per element: nearly ``lr * sign(g)``, and for a gradient near
    ``eps = 1e-8`` a change ``d`` in ``g`` changes the step by up to ``lr * d / eps`` -- a
    gain of 1e5. (Extreme case: the biases in front of a BatchNorm, whose exact gradient is
    zero; both sides step by ``lr * noise / (|noise| + eps)``.) Two correct implementations
    whose gradients agree to 1e-13 can therefore differ at 1e-8 in a few parameters. The
    test checks each element against exactly that bound (``g -> g / (|g| + eps)`` is
    Lipschitz with constant ``1 / eps``)::

        |p_numpy - p_torch| <= lr * |g_numpy - g_torch| / eps + NETWORK_GRAD_F64 * max|p|

    and prints the plain relative error too. Multi-step Adam with identical gradients is
    tested in the layer tests of :mod:`reference.adam`.
    """
    lr, adam_eps = 1e-3, 1e-8
    model = random_torch_model(6).train()
    params = export_to_reference(model, tmp_path)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=adam_eps)
    state = AdamState()
    x, labels, masks = random_batch(10)
    use_masks(model, masks)
    result = network.train_step(params, state, x, labels, lr=lr, eps=adam_eps, dropout_masks=masks)

    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(labels))
    loss.backward()
    torch_grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
    optimizer.step()

    loss_error = assert_close(result.loss, loss.item(), NETWORK_GRAD_F64, "loss")
    errors = gradient_errors(result.grads, torch_grads)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= NETWORK_GRAD_F64, f"gradient of {worst}: {errors[worst]:.3e}"

    after = model.state_dict()
    plain_errors = {}
    for key, expected in after.items():
        expected = expected.numpy()
        if key.endswith("num_batches_tracked"):
            assert int(params[key]) == int(expected) == 4, key
            continue
        plain_errors[key] = rel_error(params[key], expected)
        allowed = NETWORK_GRAD_F64 * np.abs(expected).max()
        if key in torch_grads:  # a learnable parameter: add Adam's amplification of the gradient difference
            allowed = allowed + lr * np.abs(result.grads[key] - torch_grads[key]) / adam_eps
        excess = np.abs(params[key] - expected) - allowed
        assert excess.max() <= 0, f"{key} after the Adam step differs beyond the bound by {excess.max():.3e}"
    assert all(count == 1 for count in state.step.values())
    worst_param = max(plain_errors, key=plain_errors.get)
    print(f"\n[network] train_step: loss {result.loss:.6f}, relative error {loss_error:.2e}; gradients max "
          f"{errors[worst]:.2e} ({worst}); parameters and buffers after Adam: max plain relative error "
          f"{plain_errors[worst_param]:.2e} ({worst_param})")


@pytest.mark.slow
def test_bench_reference_vs_torch_smoke(tmp_path):
    """bench/reference_vs_torch.py --smoke runs both sides and writes its JSON (no timing claims here)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "bench" / "reference_vs_torch.py"
    out = tmp_path / "result.json"
    completed = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(out)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    document = json.loads(out.read_text())
    assert document["batch"] == 2 and document["smoke"] is True
    for phase in ("forward", "backward", "eval_forward"):
        result = document["results"][phase]
        assert result["numpy_s"] > 0 and result["torch_s"] > 0
        assert result["ratio_numpy_over_torch"] == pytest.approx(result["numpy_s"] / result["torch_s"])
    assert "NumPy / torch" in completed.stdout
