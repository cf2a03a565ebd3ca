"""Hostile checkpoints: altered metadata, tensor tables, header bytes and weights.

Every altered file is written from one valid run checkpoint (AlexNet with ``hidden=8``,
after one Adam step, with every random state), by rewriting its safetensors header, and
then driven through the real loaders (:func:`load_checkpoint`, :func:`model_from_checkpoint`)
and, for a few, the real CLI (``cifar_alexnet.cli.main``). An alteration the schema forbids
must raise :class:`CheckpointError` -- one line, naming the file -- and the CLI must exit 2
with one ``error:`` line; a random alteration must either load or raise that error, never
anything else.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cifar_alexnet.checkpoints import schema
from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.runtime import limits
from cifar_alexnet.errors import CheckpointError
from cifar_alexnet.runtime.random_state import capture_rng_state
from cifar_alexnet.checkpoints.format import load_checkpoint, model_from_checkpoint, save_checkpoint
from cifar_alexnet.cli import main
from cifar_alexnet.data.arrays import CIFAR10_CLASSES
from cifar_alexnet.model import AlexNet
from cifar_alexnet.checkpoints.safe_load import load_torch_file_safely, max_torch_file_bytes
from helpers import REPO_ROOT, write_tiny_data
from strategies import JSON_VALUES

HIDDEN = 8
META_KEY, OPT_KEY, RNG_KEY = "cifar_alexnet", "cifar_alexnet.optimizer", "cifar_alexnet.rng"


# ------------------------------------------------------------------------------------ the valid file


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    """A run checkpoint as ``train`` writes it: weights, Adam state, random states, run metadata."""
    torch.manual_seed(0)
    model = AlexNet(hidden=HIDDEN)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    meta = CheckpointMeta.from_json("test", {
        "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26], "classes": list(CIFAR10_CLASSES), "arch": {},
        "format_version": 2, "epoch": 1, "step": 0, "mid_epoch": None, "metrics": {"test_acc": 10.0},
        "best": {"test_acc": 10.0, "epoch": 1}, "history": [{"epoch": 1, "test_acc": 10.0}], "scaler": None,
        "config": {"recipe": "original"}})
    path = tmp_path_factory.mktemp("valid") / "last.safetensors"
    return save_checkpoint(path, model, meta=meta, optimizer=optimizer,
                           rng_state=capture_rng_state({"loader": torch.Generator().manual_seed(1)}))


def split(path: Path) -> tuple[dict, bytes]:
    """(the header as a dict whose metadata strings are parsed, the tensor bytes)."""
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    table = json.loads(data[8:8 + length])
    table["__metadata__"] = {k: (v if k == "format" else json.loads(v)) for k, v in table["__metadata__"].items()}
    return table, data[8 + length:]


def join(table: dict, tensor_bytes: bytes) -> bytes:
    table = dict(table)
    if isinstance(table.get("__metadata__"), dict):
        table["__metadata__"] = {k: (v if isinstance(v, str) else json.dumps(v))
                                 for k, v in table["__metadata__"].items()}
    header = json.dumps(table).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + tensor_bytes


def assert_refused(path: Path) -> None:
    """Both loaders raise one-line CheckpointErrors naming the file (never another exception)."""
    for loader in (load_checkpoint, model_from_checkpoint):
        with pytest.raises(CheckpointError) as info:
            loader(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message, message


def loads_or_refused(path: Path) -> bool:
    """True if both loaders read ``path``; each refusal must be a one-line CheckpointError naming it.

    Any other exception fails the test. A file that loads must also survive a round trip: its
    metadata, written again by ``save_checkpoint`` and read back, is what was read -- so the
    loaders accept nothing the package could not itself have written.
    """
    outcomes = []
    for loader in (load_checkpoint, model_from_checkpoint):
        try:
            loader(path)
            outcomes.append(True)
        except CheckpointError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
            outcomes.append(False)
    if outcomes[0]:
        ckpt = load_checkpoint(path)
        again = path.with_name(path.stem + "-again.safetensors")
        model = AlexNet(**ckpt.meta.arch.to_json()) if ckpt.meta.arch else torch.nn.Linear(1, 1)
        save_checkpoint(again, model, meta=ckpt.meta)
        reread = load_checkpoint(again).meta.to_json()
        for key, value in ckpt.meta.to_json().items():
            if key not in ("package_version", "torch_version", "arch"):
                assert reread[key] == value, key
    return outcomes[0] and outcomes[1]


def test_the_valid_file_loads_also_after_rewriting_its_header(valid, tmp_path):
    """The control: the rewriting alone breaks nothing, so a refusal below is the alteration's doing."""
    ckpt = load_checkpoint(valid)
    assert ckpt.meta.arch.to_json() == {"num_classes": 10, "hidden": HIDDEN, "dropout": 0.2}
    assert len(ckpt.optimizer_state["param_groups"][0]["params"]) == 32
    model, meta = model_from_checkpoint(valid)
    assert model.hidden == HIDDEN and meta.classes == CIFAR10_CLASSES
    table, tensors = split(valid)
    apply(table, ("meta", "note"), "free-form keys at the top level are allowed")
    (tmp_path / "rewritten.safetensors").write_bytes(join(table, tensors))
    assert loads_or_refused(tmp_path / "rewritten.safetensors")
    assert load_checkpoint(tmp_path / "rewritten.safetensors").meta.extra["note"].startswith("free-form")


# ------------------------------------------------------------------------------------ forbidden alterations

NOT_INT = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.none(), st.booleans(),
                    st.lists(st.integers(), max_size=2))
NOT_NUMBER = st.one_of(st.text(max_size=5), st.none(), st.booleans(), st.lists(st.floats(0, 1), max_size=2))
MISSING = object()


def _meta_field(path: tuple, values: st.SearchStrategy, required: bool = True) -> st.SearchStrategy:
    return st.tuples(st.just(("meta",) + path), st.one_of(values, st.just(MISSING)) if required else values)


def _class_lists(draw_count: st.SearchStrategy) -> st.SearchStrategy:
    return draw_count.map(lambda n: [f"c{i}" for i in range(n)])


#: (where, new value): every one breaks a rule of cifar_alexnet.checkpoints.schema.
FORBIDDEN = st.one_of(
    # version
    _meta_field(("format_version",), st.one_of(st.integers(max_value=0), st.integers(3, 10**6), NOT_INT)),
    # class names: wrong type, out of range, inconsistent with the final layer, duplicates, empty
    _meta_field(("classes",), st.one_of(
        NOT_INT, st.text(max_size=3), _class_lists(st.integers(0, 1)), _class_lists(st.integers(1001, 1100)),
        _class_lists(st.integers(2, 1000).filter(lambda n: n != 10)),
        st.lists(st.sampled_from(["cat", "dog"]), min_size=10, max_size=10).filter(lambda c: len(set(c)) < 10),
        st.integers(0, 9).map(lambda i: [("" if j == i else f"c{j}") for j in range(10)]),
        st.integers(0, 9).map(lambda i: [(7 if j == i else f"c{j}") for j in range(10)]))),
    # normalisation
    *[_meta_field((key,), st.one_of(
        NOT_NUMBER, st.lists(st.floats(0.1, 0.9), max_size=6).filter(lambda v: len(v) != 3),
        st.tuples(st.integers(0, 2), st.one_of(st.floats(-1e9, -1e-6), st.floats(1.0001, 1e9),
                                               *([st.just(0.0)] if key == "std" else []))).map(
            lambda t: [t[1] if i == t[0] else 0.3 for i in range(3)]),
        st.integers(0, 2).map(lambda i: [("x" if j == i else 0.3) for j in range(3)]))) for key in ("mean", "std")],
    # architecture: wrong type, out of range (huge), inconsistent with the tensors, extra key
    _meta_field(("arch", "hidden"), st.one_of(NOT_INT, st.integers(max_value=0), st.integers(limits.MAX_HIDDEN + 1),
                                              st.integers(1, limits.MAX_HIDDEN).filter(lambda h: h != HIDDEN))),
    _meta_field(("arch", "num_classes"), st.one_of(NOT_INT, st.integers(max_value=1), st.integers(1001),
                                                   st.integers(2, 1000).filter(lambda n: n != 10))),
    _meta_field(("arch", "dropout"), st.one_of(NOT_NUMBER, st.floats(max_value=-1e-9), st.floats(min_value=1.0,
                                                                                                allow_infinity=False))),
    _meta_field(("arch", "extra"), st.one_of(st.integers(), st.text(max_size=3)), required=False),
    _meta_field(("arch",), st.one_of(NOT_INT, st.just([]))),
    # counters
    *[_meta_field((key,), st.one_of(st.integers(max_value=-1), st.integers(limits.MAX_COUNTER + 1), NOT_INT),
                  required=False) for key in ("epoch", "step")],
    _meta_field(("best", "epoch"), st.one_of(st.integers(2, 10**6), st.integers(max_value=-1), NOT_INT)),
    _meta_field(("history",), st.one_of(NOT_INT.filter(lambda v: v is not None and not isinstance(v, list)),
                                        st.integers(2, 5).map(lambda n: [{"epoch": i + 1} for i in range(n)]),
                                        st.just([{"epoch": 0}])), required=False),
    _meta_field(("mid_epoch",), st.one_of(st.integers(), st.text(max_size=3), st.fixed_dictionaries(
        {"step": st.integers(1, 100), "loss_sum": st.floats(0, 10), "correct": st.integers(0, 5),
         "seen": st.integers(0, 5), "train_time_s": st.floats(0, 5)})), required=False),  # step 1.. contradicts 0
    # optimizer: options, parameter ids, state against the parameters
    st.tuples(st.just(("optimizer", "param_groups", 0, "lr")), st.one_of(NOT_NUMBER, st.floats(max_value=-1e-9))),
    st.tuples(st.just(("optimizer", "param_groups", 0, "eps")), st.one_of(NOT_NUMBER, st.floats(max_value=0))),
    st.tuples(st.just(("optimizer", "param_groups", 0, "betas")),
              st.one_of(st.text(max_size=5), st.none(), st.booleans(),
                        st.lists(st.floats(0, 0.99), max_size=4).filter(lambda b: len(b) != 2),
                        st.tuples(st.floats(1.0, 10), st.floats(0, 0.99)).map(list))),
    st.tuples(st.just(("optimizer", "param_groups", 0, "params")), st.one_of(
        NOT_INT, st.lists(st.integers(0, 40), max_size=40).filter(lambda p: sorted(p) != list(range(32))))),
    st.tuples(st.just(("optimizer", "param_groups")), st.one_of(NOT_INT, st.just([]))),
    st.tuples(st.just(("optimizer", "state", "0", "step")), st.one_of(st.text(max_size=3), st.lists(st.integers()))),
    # random states
    st.tuples(st.just(("rng", "python")), st.one_of(NOT_INT, st.lists(st.integers(0, 5), max_size=4))),
    st.tuples(st.just(("rng", "numpy", 1)), st.one_of(
        NOT_INT, st.lists(st.integers(0, 2**32 - 1), max_size=10),
        st.integers(-2**40, -1).map(lambda v: [v] * 624), st.integers(2**32, 2**70).map(lambda v: [v] * 624))),
    st.tuples(st.just(("rng", "numpy", 2)), st.one_of(NOT_INT, st.integers(max_value=-1), st.integers(625))),
    # the tensor table: shape against the architecture (same byte count), dtype, offsets, names
    st.tuples(st.just(("tensors", "model.classifier.8.weight", "shape")), st.just([HIDDEN, 10])),
    st.tuples(st.just(("tensors", "model.classifier.1.weight", "shape")),
              st.sampled_from([[4096, HIDDEN], [HIDDEN * 4096], [HIDDEN * 2, 2048]])),
    st.tuples(st.just(("tensors", "optimizer.state.0.exp_avg", "shape")), st.just([64 * 27])),
    st.tuples(st.just(("tensors", "model.features.0.weight", "dtype")), st.sampled_from(["F64", "F16", "I64", "U8",
                                                                                        "X9", 3])),
    st.tuples(st.just(("tensors", "model.features.0.bias", "data_offsets")),
              st.lists(st.integers(-10, 10**12), min_size=0, max_size=3)),
    st.tuples(st.just(("tensors", "model.features.0.bias", "shape")),
              st.one_of(st.lists(st.integers(65, 10**9), min_size=1, max_size=3), st.text(max_size=3), st.none(),
                        st.floats(allow_nan=False, allow_infinity=False))),
    st.tuples(st.just(("rename", "model.features.0.bias")),
              st.sampled_from(["model.features.99.bias", "optimizer.state.77.exp_avg", "weights", "rng.other"])),
    st.tuples(st.just(("rename", "optimizer.state.3.exp_avg")), st.just("optimizer.state.999.exp_avg")),
    st.tuples(st.just(("rename", "rng.torch_cpu")), st.just("rng.generators.stolen")),
    st.tuples(st.just(("header", "extra")), st.text(max_size=5)),
)


def apply(table: dict, where: tuple, value) -> None:
    """Alter ``table`` (from :func:`split`) in place at ``where``."""
    metadata = table["__metadata__"]
    kind, rest = where[0], where[1:]
    if kind == "header":
        metadata["surprise"] = value
        return
    if kind == "rename":
        table[value] = table.pop(rest[0])
        return
    node = {"meta": metadata[META_KEY], "optimizer": metadata[OPT_KEY], "rng": metadata[RNG_KEY],
            "tensors": table}[kind]
    for key in rest[:-1]:
        node = node[key]
    if value is MISSING:
        del node[rest[-1]]
    else:
        node[rest[-1]] = value


@given(change=FORBIDDEN)
def test_forbidden_alterations_are_refused_by_both_loaders(valid, tmp_path_factory, change):
    where, value = change
    table, tensors = split(valid)
    apply(table, where, value)
    path = tmp_path_factory.mktemp("bad") / "altered.safetensors"
    path.write_bytes(join(table, tensors))
    assert_refused(path)


@settings(max_examples=8)
@given(position=st.integers(0, 2**20), value=st.sampled_from([math.nan, math.inf, -math.inf]),
       name=st.sampled_from(["model.features.0.weight", "model.classifier.9.running_var",
                             "optimizer.state.5.exp_avg_sq"]))
def test_non_finite_weights_are_refused(valid, tmp_path_factory, position, value, name):
    table, tensors = split(valid)
    info = table[name]
    begin, end = info["data_offsets"]
    at = begin + 4 * (position % ((end - begin) // 4))
    altered = tensors[:at] + torch.tensor([value], dtype=torch.float32).numpy().tobytes() + tensors[at + 4:]
    path = tmp_path_factory.mktemp("nan") / "nan.safetensors"
    path.write_bytes(join(table, altered))
    assert_refused(path)
    with pytest.raises(CheckpointError, match=rf"{name}.*non-finite"):
        load_checkpoint(path)


@given(length=st.one_of(st.integers(schema.MAX_HEADER_BYTES + 1, 2**64 - 1), st.integers(0, 7),
                        st.integers(20, 2000)))
def test_header_length_is_bounded_and_checked(valid, tmp_path_factory, length):
    data = bytearray(valid.read_bytes())
    data[:8] = length.to_bytes(8, "little")
    path = tmp_path_factory.mktemp("len") / "len.safetensors"
    path.write_bytes(bytes(data))
    assert_refused(path)


# ------------------------------------------------------------------------------------ random alterations



def _paths(node, prefix=()):
    """Every path into a JSON tree."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node[:8]):
            yield from _paths(value, prefix + (i,))


@given(data=st.data())
def test_random_metadata_alterations_load_or_raise_checkpoint_error(valid, tmp_path_factory, data):
    table, tensors = split(valid)
    key = data.draw(st.sampled_from([META_KEY, OPT_KEY, RNG_KEY]))
    tree = table["__metadata__"][key]
    paths = [p for p in _paths(tree) if p]
    where = data.draw(st.sampled_from(paths))
    node = tree
    for step in where[:-1]:
        node = node[step]
    action = data.draw(st.sampled_from(["replace", "delete"]))
    if action == "delete" and isinstance(node, dict):
        del node[where[-1]]
    else:
        node[where[-1]] = data.draw(JSON_VALUES)
    path = tmp_path_factory.mktemp("random") / "random.safetensors"
    path.write_bytes(join(table, tensors))
    if loads_or_refused(path) and key == META_KEY:  # what was read is what the file holds
        stored = {k: v for k, v in table["__metadata__"][key].items() if v is not None and k != "step"}
        assert load_checkpoint(path).meta.to_json().items() >= stored.items()


@given(data=st.data())
def test_random_header_bytes_load_or_raise_checkpoint_error(valid, tmp_path_factory, data):
    raw = bytearray(valid.read_bytes())
    length = int.from_bytes(raw[:8], "little")
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, 8 + length - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("bytes") / "bytes.safetensors"
    path.write_bytes(bytes(raw))
    if loads_or_refused(path):  # a flipped byte that still loads left the model's keys and shapes as they were
        expected = {k: v.shape for k, v in load_checkpoint(valid).state_dict.items()}
        assert {k: v.shape for k, v in load_checkpoint(path).state_dict.items()} == expected


# ------------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("data"))


def _cli(args: list, capsys) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


CLI_CASES = {
    "huge hidden": (("meta", "arch", "hidden"), 10**9),
    "classes of the wrong type": (("meta", "classes"), "airplane"),
    "std zero": (("meta", "std"), [0.25, 0.0, 0.25]),
    "negative epoch": (("meta", "epoch"), -3),
    "weights that do not fit": (("tensors", "model.classifier.8.weight", "shape"), [HIDDEN, 10]),
    "optimizer for another model": (("optimizer", "param_groups", 0, "params"), [0, 1, 2]),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_evaluate_and_predict_exit_2_with_one_error_line(valid, tiny_data, tmp_path, capsys, case):
    table, tensors = split(valid)
    apply(table, *CLI_CASES[case])
    path = tmp_path / "altered.safetensors"
    path.write_bytes(join(table, tensors))
    image = next((tiny_data / "test").rglob("*.png"))
    for args in (["evaluate", path, "--data", tiny_data, "--device", "cpu"], ["predict", path, image]):
        code, lines = _cli(args, capsys)
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], lines


def test_cli_works_on_the_unaltered_file(valid, tiny_data, capsys):
    image = next((tiny_data / "test").rglob("*.png"))
    assert _cli(["evaluate", valid, "--data", tiny_data, "--device", "cpu"], capsys) == (0, [])
    assert _cli(["predict", valid, image], capsys) == (0, [])


# ------------------------------------------------------------------------------------ memory

PEAK_SCRIPT = """
import json, sys, torch
from pathlib import Path
from safetensors.torch import save_file
from cifar_alexnet.errors import CheckpointError
from cifar_alexnet.checkpoints.format import model_from_checkpoint
def peak_kb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
for hidden in sys.argv[2:]:
    path = Path(sys.argv[1]) / f"hidden{hidden}.safetensors"
    meta = {"mean": [0.5] * 3, "std": [0.25] * 3, "classes": [f"c{i}" for i in range(10)], "format_version": 2,
            "arch": {"num_classes": 10, "hidden": int(hidden), "dropout": 0.2}, "pad": "x" * 9000}
    save_file({"model.classifier.1.weight": torch.zeros(4)}, path,
              metadata={"format": "pt", "cifar_alexnet": json.dumps(meta)})
    before = peak_kb()
    try:
        model_from_checkpoint(path)
        print("LOADED")
    except CheckpointError as exc:
        print(json.dumps({"bytes": path.stat().st_size, "before_kb": before, "after_kb": peak_kb(),
                          "error": str(exc)}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's /proc")
def test_a_10kb_file_claiming_a_huge_model_is_refused_without_allocating(tmp_path):
    """hidden=MAX_HIDDEN: the tensor table disagrees with the arch; 32768 (4.8 GB of float32): out of range.

    Before the schema, the second made model_from_checkpoint allocate 5.3 GB (VmHWM) before refusing."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path), str(limits.MAX_HIDDEN), "32768"],
                         capture_output=True, text=True, env=env, timeout=120)
    results = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert len(results) == 2, out.stdout + out.stderr
    for result in results:
        assert result["bytes"] < 10_000
        assert "hidden" in result["error"]
        # AlexNet(hidden=16384) alone would take 1.1 GB; the refusal may grow the peak by 50 MB at most
        assert result["after_kb"] - result["before_kb"] < 50_000, result


# ------------------------------------------------------------------------------------ the notebook's .pth


@pytest.mark.parametrize("alteration", ["nan", "inf", "int keys", "list"])
def test_altered_original_pth_is_refused_by_loader_and_cli(tmp_path, capsys, alteration):
    state = {f"module.{k.replace('features.', 'features2.').replace('classifier.', 'classifier2.')}": v
             for k, v in AlexNet().state_dict().items()}
    torch.save(state, tmp_path / "control.pth")
    model_from_checkpoint(tmp_path / "control.pth")  # the unaltered layout loads
    if alteration in ("nan", "inf"):
        state["module.features2.0.weight"][0, 0, 0, 0] = math.nan if alteration == "nan" else math.inf
    elif alteration == "int keys":
        state = {i: v for i, v in enumerate(state.values())}
    else:
        state = list(state.values())
    path = tmp_path / "alexnet_sukjoon.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        model_from_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    code, lines = _cli(["predict", path, tmp_path / "missing.png"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], lines


def test_max_torch_file_bytes_holds_the_largest_model_in_float64():
    """The limit: the float64 weights of AlexNet(MAX_CLASSES, MAX_HIDDEN), plus MAX_HEADER_BYTES for the rest."""
    with torch.device("meta"):
        largest = AlexNet(num_classes=limits.MAX_CLASSES, hidden=limits.MAX_HIDDEN)
    weights = sum(t.numel() for t in largest.state_dict().values()) * torch.finfo(torch.float64).bits // 8
    assert weights <= max_torch_file_bytes() <= weights + schema.MAX_HEADER_BYTES


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="rchar is Linux's /proc")
def test_a_pth_larger_than_the_limit_is_refused_unread(tmp_path, capsys):
    """A sparse file one byte over the limit (it costs no disk): refused from its size, by every reader, unread."""
    limit = max_torch_file_bytes()
    path = tmp_path / "alexnet_sukjoon.pth"
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04")  # a zip: how torch.save files begin
        f.truncate(limit + 1)

    def bytes_read() -> int:
        return int(next(line for line in open("/proc/self/io") if line.startswith("rchar")).split()[1])

    before = bytes_read()
    for load in (load_torch_file_safely, model_from_checkpoint):
        with pytest.raises(CheckpointError) as info:
            load(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message, message
        assert f"{limit + 1:,} bytes" in message and f"{limit:,} bytes" in message, message
        assert "torch.save(model.state_dict(), path)" in message, message
    assert bytes_read() - before < 1 << 20  # of a 2.7 GB file
    code, lines = _cli(["predict", path, tmp_path / "image.png"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], lines
    assert f"{limit + 1:,} bytes" in lines[0]


MMAP_SCRIPT = """
import json, sys
import torch
from cifar_alexnet.checkpoints.safe_load import load_torch_file_safely
def rss_kb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
before = rss_kb()
state = load_torch_file_safely(sys.argv[1])
grew_kb = rss_kb() - before
print(json.dumps({"grew_kb": grew_kb, "sum": float(sum(t.double().sum() for t in state.values()))}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmRSS is Linux's /proc")
def test_a_zip_pth_is_memory_mapped_and_a_legacy_pth_still_loads(tmp_path):
    """The default AlexNet's weights (57 MiB): loading a zip-format .pth copies none of them into memory.

    Each file is loaded by a fresh process, whose resident memory before the load holds no freed
    tensor memory that the load could reuse unseen."""
    state = AlexNet().state_dict()
    expected = float(sum(t.double().sum() for t in state.values()))
    zip_path, legacy_path = tmp_path / "zip.pth", tmp_path / "legacy.pth"
    torch.save(state, zip_path)
    torch.save(state, legacy_path, _use_new_zipfile_serialization=False)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    loads = {}
    for path in (zip_path, legacy_path):
        out = subprocess.run([sys.executable, "-c", MMAP_SCRIPT, str(path)], capture_output=True, text=True,
                             env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        loads[path.name] = json.loads(out.stdout)
        assert loads[path.name]["sum"] == expected  # the same weights, from either format
    size_kb = zip_path.stat().st_size // 1024
    assert loads["zip.pth"]["grew_kb"] < size_kb // 4, (loads, size_kb)  # mapped: pages are read when used
    assert loads["legacy.pth"]["grew_kb"] > size_kb // 2, (loads, size_kb)  # control: a whole read does grow


@pytest.mark.parametrize("epoch", [-3, 10**12, 1.5])
def test_train_resume_refuses_a_checkpoint_with_an_impossible_epoch(tiny_data, tmp_path, capsys, epoch):
    """The attack's case: a resume from epoch -3 trained epochs -2..2. Now it is one error line, nothing trained."""
    from helpers import TINY, read_history

    run_dir = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--out", str(run_dir), *TINY, "--epochs", "1"]) == 0
    table, tensors = split(run_dir / "last.safetensors")
    table["__metadata__"][META_KEY]["epoch"] = epoch
    (run_dir / "last.safetensors").write_bytes(join(table, tensors))
    altered = (run_dir / "last.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--epochs", "3"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"error: {run_dir / 'last.safetensors'}: ") and "epoch" in err[0], err
    assert len(read_history(run_dir)) == 1
    assert (run_dir / "last.safetensors").read_bytes() == altered
