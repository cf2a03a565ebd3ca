"""Checkpoints: exact round trips, atomic writes, readable refusals, and no code execution on load."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import pickle
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cifar_alexnet.checkpoints.format as ckpt_mod
from cifar_alexnet.errors import DiskFullError
from cifar_alexnet.errors import CheckpointError
from cifar_alexnet.runtime.random_state import capture_rng_state, restore_rng_state
from cifar_alexnet.checkpoints.safe_load import check_state_dict_matches, load_torch_file_safely, torch_version_tuple
from cifar_alexnet.checkpoints.format import load_checkpoint, model_from_checkpoint, save_checkpoint
from cifar_alexnet.checkpoints.meta import CHECKPOINT_FORMAT_VERSION, CheckpointMeta, RunState
from cifar_alexnet.checkpoints.original_pth import load_original_state_dict
from cifar_alexnet.model import AlexNet

REPO_ROOT = Path(__file__).resolve().parents[2]
HIDDEN = 32  # a narrow classifier keeps these tests fast; the conv stack is the real one
META = CheckpointMeta(classes=tuple(f"class{i}" for i in range(10)), mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26),
                      run=RunState(epoch=3), metrics={"test_acc": 0.5, "test_loss": 1.25},
                      config={"recipe": "fast", "lr": 1e-3})
SMALL_META = CheckpointMeta(classes=("a", "b"), mean=(0.5,) * 3, std=(0.2,) * 3)


def _load_original_loop():
    spec = importlib.util.spec_from_file_location("original_loop", REPO_ROOT / "bench" / "original_loop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batch(seed: int, n: int = 6, num_classes: int = 10):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, num_classes, (n,), generator=gen)


def _train_steps(model, optimizer, steps: int, seed: int) -> None:
    """Steps that use the global torch RNG (dropout) and python/numpy RNG (batch choice)."""
    model.train()
    for _ in range(steps):
        x, y = _batch(seed + random.randrange(1000) + int(np.random.randint(1000)))
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def _state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------ round trip


def test_round_trip_resumes_training_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    model = AlexNet(hidden=HIDDEN)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader_gen = torch.Generator().manual_seed(7)
    _train_steps(model, optimizer, 2, seed=1)

    path = save_checkpoint(tmp_path / "last.safetensors", model, meta=META, optimizer=optimizer,
                           rng_state=capture_rng_state({"loader": loader_gen}))

    # Continue the original run: two more steps and a draw from the loader generator.
    _train_steps(model, optimizer, 2, seed=2)
    expected_draw = torch.randperm(50, generator=loader_gen)
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    # Resume from the file into fresh objects, after scrambling every random generator.
    torch.manual_seed(123), random.seed(123), np.random.seed(123)
    other_gen = torch.Generator().manual_seed(999)
    ckpt = load_checkpoint(path)
    resumed = AlexNet(**ckpt.meta.arch.to_json())
    resumed.load_state_dict(ckpt.state_dict)
    resumed_opt = torch.optim.Adam(resumed.parameters(), lr=5.0)  # lr must come back from the file
    resumed_opt.load_state_dict(ckpt.optimizer_state)
    restore_rng_state(ckpt.rng_state, {"loader": other_gen})
    _train_steps(resumed, resumed_opt, 2, seed=2)

    assert torch.equal(torch.randperm(50, generator=other_gen), expected_draw)
    assert _state_equal(resumed.state_dict(), expected)
    assert resumed_opt.param_groups[0]["lr"] == 1e-3
    assert resumed_opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_meta_is_preserved_and_completed(tmp_path):
    model = AlexNet(hidden=HIDDEN)
    path = save_checkpoint(tmp_path / "c.safetensors", model, meta=META)
    ckpt = load_checkpoint(path)
    stored = ckpt.meta.to_json()
    for key, value in META.to_json().items():
        if key not in ("arch", "torch_version", "package_version"):
            assert stored[key] == value, key
    assert ckpt.meta.arch.to_json() == {"num_classes": 10, "hidden": HIDDEN, "dropout": 0.2}
    assert ckpt.meta.torch_version == torch.__version__
    assert ckpt.meta.format_version == CHECKPOINT_FORMAT_VERSION
    assert ckpt.optimizer_state is None and ckpt.rng_state is None
    assert _state_equal(ckpt.state_dict, model.state_dict())


def test_model_from_checkpoint_unwraps_compile_and_parallel_prefixes(tmp_path):
    torch.manual_seed(1)
    model = AlexNet(hidden=HIDDEN).eval()
    x, _ = _batch(0)
    # save the tensors under DataParallel + torch.compile style keys, as a wrapped model would
    wrapped = nn.DataParallel(model)
    save_checkpoint(tmp_path / "c.safetensors", wrapped, meta=META)
    ckpt = load_checkpoint(tmp_path / "c.safetensors")
    assert all(not k.startswith("module.") for k in ckpt.state_dict)  # save unwrapped it
    prefixed = {f"module._orig_mod.{k}": v for k, v in ckpt.state_dict.items()}
    tensors = {f"model.{k}": v.contiguous() for k, v in prefixed.items()}
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tmp_path / "c.safetensors"), "pt") as handle:
        header = handle.metadata()
    save_file(tensors, tmp_path / "prefixed.safetensors", metadata=header)
    loaded, meta = model_from_checkpoint(tmp_path / "prefixed.safetensors")
    assert not loaded.training
    assert meta.classes == META.classes
    assert torch.equal(loaded(x), model(x))


def test_run_directory_resolves_to_best_then_last(tmp_path):
    a, b = AlexNet(hidden=HIDDEN), AlexNet(hidden=HIDDEN)
    save_checkpoint(tmp_path / "last.safetensors", a, meta=META)
    assert _state_equal(load_checkpoint(tmp_path).state_dict, a.state_dict())
    save_checkpoint(tmp_path / "best.safetensors", b, meta=META)
    assert _state_equal(load_checkpoint(tmp_path).state_dict, b.state_dict())
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(FileNotFoundError, match="empty_run is a directory without best.safetensors"):
        load_checkpoint(tmp_path / "empty_run")
    with pytest.raises(FileNotFoundError, match="nothing.safetensors does not exist"):
        load_checkpoint(tmp_path / "nothing.safetensors")


def _deep_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b))
    return a == b


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(["adam", "adamw", "sgd"]), steps=st.integers(0, 2), momentum=st.sampled_from([0.0, 0.9]),
       seed=st.integers(0, 2**31 - 1), draws=st.integers(0, 3))
def test_optimizer_and_rng_states_round_trip_exactly(tmp_path_factory, kind, steps, momentum, seed, draws):
    """What a checkpoint stores comes back with the same types and values (tuples, int ids, arrays)."""
    torch.manual_seed(seed), random.seed(seed), np.random.seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    optimizer = {"adam": lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.8, 0.99)),
                 "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.1),
                 "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=momentum)}[kind](model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(5, 3)).square().mean().backward()
        optimizer.step()
    for _ in range(draws):  # move every generator away from its seed
        random.random(), np.random.rand(), torch.rand(1)
    state = capture_rng_state({"loader": torch.Generator().manual_seed(seed)})
    path = tmp_path_factory.mktemp("ckpt") / "c.safetensors"
    save_checkpoint(path, model, meta=SMALL_META, optimizer=optimizer, rng_state=state)
    ckpt = load_checkpoint(path)
    assert _deep_equal(ckpt.optimizer_state, optimizer.state_dict())
    assert _deep_equal(ckpt.rng_state, state)
    assert ckpt.meta.format_version == CHECKPOINT_FORMAT_VERSION


#: Written by the format-1 code (tagged JSON) of main at 656a9c4: a Linear-BatchNorm-Linear net
#: after one Adam step (lr 1e-3), with every random state.
FORMAT1_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoint_format1.safetensors"


def test_format1_checkpoint_still_loads():
    """The tagged JSON of format 1 is decoded into the structures torch expects, every value in its place.

    The expected tensor values are the file's own, read by the safetensors library directly: the
    test checks where our decoding puts them, not how this CPU rounds a training step.
    """
    from safetensors import safe_open

    with safe_open(str(FORMAT1_FILE), framework="pt") as handle:
        raw = {name: handle.get_tensor(name) for name in handle.keys()}
    ckpt = load_checkpoint(FORMAT1_FILE)
    assert ckpt.meta.format_version == 1
    assert ckpt.meta.classes == ("a", "b") and ckpt.meta.run.history == ({"epoch": 1, "test_acc": 50.0},)
    assert _state_equal(ckpt.state_dict, {name[len("model."):]: t for name, t in raw.items()
                                          if name.startswith("model.")})
    # Structure: what a fresh Adam of the same network produces after one step, on any CPU.
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    expected = optimizer.state_dict()
    assert ckpt.optimizer_state["param_groups"] == expected["param_groups"]
    assert ckpt.optimizer_state["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(ckpt.optimizer_state["state"]) == sorted(expected["state"])
    for param_id, values in ckpt.optimizer_state["state"].items():
        assert sorted(values) == sorted(expected["state"][param_id])
        for name, value in values.items():
            assert torch.equal(value, raw[f"optimizer.state.{param_id}.{name}"])
    # The file's weights are this net after one Adam step: every parameter moved by at most lr
    # (Adam's first step is lr * m/sqrt(v) = lr * sign(g)), so two CPUs agree within 2 * lr even
    # where a gradient is rounding noise (the bias in front of the BatchNorm).
    for name, value in model.state_dict().items():
        assert torch.allclose(ckpt.state_dict[name].float(), value.float(), atol=2e-3, rtol=0), name
    # The random states were captured right after that step; generators are the same on every CPU.
    assert _deep_equal(ckpt.rng_state, capture_rng_state({"loader": torch.Generator().manual_seed(7)}))
    resumed = torch.optim.Adam(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).parameters())
    resumed.load_state_dict(ckpt.optimizer_state)  # the structure torch expects
    restore_rng_state(ckpt.rng_state)
    after_restore = random.random()
    random.seed(0)
    assert after_restore == random.random()


def test_rng_state_round_trip_through_file(tmp_path):
    model = AlexNet(hidden=HIDDEN)  # built first: its initialisation draws from the torch RNG
    gen = torch.Generator().manual_seed(5)
    state = capture_rng_state({"g": gen})
    save_checkpoint(tmp_path / "c.safetensors", model, meta=META, rng_state=state)
    draws = (torch.rand(4), random.random(), np.random.rand(3), torch.rand(4, generator=gen))
    restore_rng_state(load_checkpoint(tmp_path / "c.safetensors").rng_state, {"g": gen})
    again = (torch.rand(4), random.random(), np.random.rand(3), torch.rand(4, generator=gen))
    assert torch.equal(draws[0], again[0]) and draws[1] == again[1]
    assert np.array_equal(draws[2], again[2]) and torch.equal(draws[3], again[3])
    with pytest.raises(CheckpointError, match="'missing'"):
        restore_rng_state(state, {"missing": torch.Generator()})


def test_save_refuses_a_wrong_class_count_and_values_json_cannot_hold(tmp_path):
    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        save_checkpoint(tmp_path / "c.safetensors", AlexNet(hidden=HIDDEN), meta=replace(META, std=(1.0, float("nan"), 1.0)))
    with pytest.raises(CheckpointError, match="num_classes=10"):
        save_checkpoint(tmp_path / "c.safetensors", AlexNet(hidden=HIDDEN), meta=replace(META, classes=("a", "b")))
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------ atomicity


def test_failure_mid_write_leaves_previous_checkpoint_and_no_temp_files(tmp_path, monkeypatch):
    old, new = AlexNet(hidden=HIDDEN), AlexNet(hidden=HIDDEN)
    path = save_checkpoint(tmp_path / "last.safetensors", old, meta=META)
    before = path.read_bytes()
    real_save_file = ckpt_mod.save_file

    def save_half_then_crash(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])  # half a file is on disk ...
        raise KeyboardInterrupt("simulated crash while writing")  # ... when the process is interrupted

    monkeypatch.setattr(ckpt_mod, "save_file", save_half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, new, meta=replace(META, run=RunState(epoch=4)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]
    assert load_checkpoint(path).meta.run.epoch == 3


def test_disk_full_names_the_file_and_keeps_previous(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.safetensors", AlexNet(hidden=HIDDEN), meta=META)
    before = path.read_bytes()

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod, "save_file", disk_full)
    with pytest.raises(DiskFullError, match="last.safetensors"):
        save_checkpoint(path, AlexNet(hidden=HIDDEN), meta=META)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


# ------------------------------------------------------------------------------------ refusals


def test_other_class_count_is_refused_with_keys_shapes_and_hint(tmp_path):
    save_checkpoint(tmp_path / "c100.safetensors", AlexNet(num_classes=100, hidden=HIDDEN),
                    meta=replace(META, classes=tuple(str(i) for i in range(100))))
    ckpt = load_checkpoint(tmp_path / "c100.safetensors")
    with pytest.raises(CheckpointError) as info:
        check_state_dict_matches(AlexNet(num_classes=10, hidden=HIDDEN), ckpt.state_dict, source="c100.safetensors")
    message = str(info.value)
    assert "c100.safetensors" in message
    assert f"classifier.8.weight: file (100, {HIDDEN}) vs model (10, {HIDDEN})" in message
    assert "classifier.9.running_mean: file (100,) vs model (10,)" in message
    assert "num_classes=100" in message
    # ... while the checkpoint itself rebuilds its own architecture without complaint
    model, meta = model_from_checkpoint(tmp_path / "c100.safetensors")
    assert model.num_classes == 100 and len(meta.classes) == 100


def test_missing_and_unexpected_keys_are_listed():
    model = AlexNet(hidden=HIDDEN)
    state = dict(model.state_dict())
    del state["features.4.weight"]
    state["features.99.weight"] = torch.zeros(1)
    state["classifier.1.weight"] = torch.zeros(64, 4096)
    with pytest.raises(CheckpointError) as info:
        check_state_dict_matches(model, state, source="weights.bin")
    message = str(info.value)
    assert "missing keys (1): features.4.weight" in message
    assert "unexpected keys (1): features.99.weight" in message
    assert "hidden=64" in message
    check_state_dict_matches(model, model.state_dict(), source="same")  # the happy path raises nothing


@pytest.mark.parametrize("keep_fraction", [0.0, 0.001, 0.3, 0.999])
def test_truncated_file_gives_checkpoint_error_naming_it(tmp_path, keep_fraction):
    path = save_checkpoint(tmp_path / "c.safetensors", AlexNet(hidden=HIDDEN), meta=META)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    for loader in (load_checkpoint, model_from_checkpoint):
        with pytest.raises(CheckpointError, match=r"c\.safetensors.*truncated or corrupt"):
            loader(path)


def test_random_bytes_give_checkpoint_error(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(1, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="noise.safetensors"):
        load_checkpoint(path)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="foreign.safetensors.*not written by"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    pth = tmp_path / "noise.pth"
    pth.write_bytes(b"PK\x03\x04" + path.read_bytes())
    with pytest.raises(CheckpointError, match="noise.pth.*not a readable torch file"):
        load_torch_file_safely(pth)


class _WritesMarker:
    """Unpickling this object calls ``os.system`` (here: creates a marker file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_code_running_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "code_ran"
    path = tmp_path / "alexnet_sukjoon.pth"
    payload = {"module.features2.0.weight": torch.zeros(64, 3, 3, 3), "evil": _WritesMarker(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle, protocol=2)

    for load in (load_torch_file_safely, load_original_state_dict, model_from_checkpoint):
        with pytest.raises(CheckpointError, match="refused to load.*code or objects.*safetensors"):
            load(path)
        assert not marker.exists()
    # Control: the payload is live -- an unsafe load does run it (so the asserts above can fail).
    # (A raw pickle is not a torch file, so torch.load complains -- after the code has run.)
    with contextlib.suppress(RuntimeError):
        torch.load(path, weights_only=False)
    assert marker.exists()


# ------------------------------------------------------------------------------------ original .pth


def test_original_notebook_dataparallel_pth_loads_with_identical_outputs(tmp_path):
    original = _load_original_loop()
    torch.manual_seed(3)
    net = nn.DataParallel(original.AlexNet_SukJoon())
    x, y = _batch(1, n=8)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    optimizer.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()  # one step, so the BN running stats are not trivial
    optimizer.step()
    path = tmp_path / "alexnet_sukjoon.pth"
    torch.save(net.state_dict(), path)
    assert "module.features2.0.weight" in torch.load(path, weights_only=True)

    net.eval()
    with torch.no_grad():
        expected = net(x)
    for model in (load_original_state_dict(path), model_from_checkpoint(path)[0]):
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(x), expected)
    assert model_from_checkpoint(path)[1].classes[0] == "airplane"


def test_safetensors_header_length_with_pickle_magic_low_byte_still_loads(tmp_path):
    """A safetensors file begins with its header length (8 bytes, little-endian); when the low
    byte of that length is 0x80 -- pickle's magic byte -- the file is still a checkpoint.

    Regression: such files (about one in 256) were refused as "a torch.save pickle"."""
    model = AlexNet(hidden=HIDDEN)
    path = tmp_path / "ckpt.safetensors"
    for pad in range(300):  # the header grows by one byte per pad character: one of 256 lengths hits 0x80
        save_checkpoint(path, model, meta=replace(META, extra={"note": "x" * pad}))
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("could not produce a header length whose low byte is 0x80")
    loaded = load_checkpoint(path)
    assert loaded.meta.extra["note"] == "x" * pad
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict[key], value), key


def test_pickles_are_refused_on_a_torch_with_a_known_weights_only_bypass(tmp_path, monkeypatch):
    """Before torch 2.10, weights_only=True had published bypasses: nothing is unpickled there."""
    path = tmp_path / "plain.pth"
    torch.save(AlexNet(hidden=HIDDEN).state_dict(), path)
    assert torch_version_tuple("2.14.1+cu130") == (2, 14)
    assert torch_version_tuple("2.9.0a0") == (2, 9)
    load_torch_file_safely(path)  # the running torch (>= 2.10, as pyproject requires) loads it
    calls = []
    monkeypatch.setattr(ckpt_mod.torch, "load", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(ckpt_mod.torch, "__version__", "2.5.1")
    with pytest.raises(CheckpointError, match=r"torch 2\.5\.1.*CVE-2025-32434.*torch>=2\.10"):
        load_torch_file_safely(path)
    assert calls == []  # refused before torch.load ran
