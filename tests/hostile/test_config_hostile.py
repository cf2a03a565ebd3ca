"""``train --resume`` with a damaged or hand-edited ``config.json``: it resumes, or exits 2 with one line.

Every mutation drives the real entry point (``cifar-alexnet train --resume RUN --epochs 1``
on a finished one-epoch run, so an accepted resume has nothing to train). The property: the
command returns 0 or 2 and raises nothing; the checkpoint is untouched; and it returns 0 only
when the run it would continue is the stored one -- the ``config.json`` it leaves behind
agrees with the original on every field that ``--resume`` may not change.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cifar_alexnet.cli import main
from cifar_alexnet.training.config import RESUME_MAY_CHANGE, TrainConfig
from helpers import TINY, write_tiny_data
from strategies import JSON_VALUES

FIELDS = sorted(f for f in TrainConfig.__dataclass_fields__)
#: Fields whose value an accepted resume may change, and the run's own paths.
FREE = set(RESUME_MAY_CHANGE) | {"resume", "out"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("config-hostile")
    data = write_tiny_data(root / "data", "folder", seed=9)
    run_dir = root / "run"
    assert main(["train", "--data", str(data), "--out", str(run_dir), *TINY, "--epochs", "1"]) == 0
    return run_dir


def resume_with(finished_run: Path, work: Path, config_bytes: bytes) -> tuple[int, list[str], Path]:
    run_dir = work / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "config.json").write_bytes(config_bytes)
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        code = main(["train", "--resume", str(run_dir), "--epochs", "1"])  # must return, never raise
    err = [line for line in stderr.getvalue().splitlines() if line.strip()]
    assert (run_dir / "last.safetensors").read_bytes() == (finished_run / "last.safetensors").read_bytes()
    return code, err, run_dir


def assert_same_run_or_refused(code: int, err: list[str], run_dir: Path, original: dict) -> None:
    assert code in (0, 2), (code, err)
    event(f"exit {code}")  # pytest --hypothesis-show-statistics: how many were accepted, how many refused
    if code == 2:
        assert err and err[0].startswith("error: ") and "Traceback" not in "\n".join(err), err
        return
    after = json.loads((run_dir / "config.json").read_text())
    changed = {k: (original[k], after.get(k)) for k in original if k not in FREE and after.get(k) != original[k]}
    assert not changed, f"a resume accepted a different run: {changed}"


MUTATIONS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(FIELDS), JSON_VALUES),
    st.tuples(st.just("set"), st.sampled_from(FIELDS), st.sampled_from(
        [None, True, False, 0, -1, 1, 2**63, 10**12, 1e308, -0.0, 0.5, 2.0, "", "cuda", "cpu", "fast", "sgd", [0.9],
         [0.9, 0.999, 0.1], [float("1e400"), 0.0]])),
    st.tuples(st.just("delete"), st.sampled_from(FIELDS), st.none()),
    st.tuples(st.just("add"), st.text(min_size=1, max_size=12), JSON_VALUES),
)


@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=3))
def test_mutated_config_json_resumes_the_same_run_or_is_refused(finished_run, tmp_path_factory, mutations):
    original = json.loads((finished_run / "config.json").read_text())
    config = dict(original)
    for action, key, value in mutations:
        if action == "delete":
            config.pop(key, None)
        else:
            config[key] = value
    work = tmp_path_factory.mktemp("mutated")
    code, err, run_dir = resume_with(finished_run, work, json.dumps(config).encode())
    assert_same_run_or_refused(code, err, run_dir, original)


@given(data=st.data())
def test_config_json_with_altered_bytes_resumes_the_same_run_or_is_refused(finished_run, tmp_path_factory,
                                                                           data):
    original_bytes = (finished_run / "config.json").read_bytes()
    raw = bytearray(original_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.none() | st.integers(0, len(raw)))
    work = tmp_path_factory.mktemp("bytes")
    code, err, run_dir = resume_with(finished_run, work, bytes(raw[:cut]))
    assert_same_run_or_refused(code, err, run_dir, json.loads(original_bytes))


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b"[1, 2]", "holds a JSON list, not an object of training options"),
    (b'{"lr": NaN}', "lr: NaN must be a finite number"),
    (b'{"epochs": "100"}', 'epochs: "100" must be int'),
    (b'{"hidden": 1000000000}', "--hidden 1000000000: must be in 1..16384"),
    (b'{"workers": 100000}', "--workers 100000: must be in 0..256"),
    (b'{"betas": [0.9]}', "betas: [0.9] must be two finite numbers"),
    (b'{"learning_rate": 0.1}', "unknown field 'learning_rate'"),
    (b'{"recipe": "turbo"}', "recipe: \"turbo\" is not one of ['fast', 'original']"),
    (b'{"seed": -1}', "--seed -1: must be in 0..2**63-1"),
])
def test_config_json_errors_name_the_file_and_the_field(finished_run, tmp_path, content, message):
    original = json.loads((finished_run / "config.json").read_text())
    if content.startswith(b"{"):  # one field changed in the run's own file
        content = json.dumps({**original, **json.loads(content)}).encode()
    code, err, run_dir = resume_with(finished_run, tmp_path, content)
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"error: {run_dir / 'config.json'}: ") and message in err[0], err
