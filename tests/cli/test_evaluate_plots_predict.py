"""evaluate (confusion matrix, accuracy, loss), plots (training curves) and predict (top-k for image files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from cifar_alexnet.checkpoints.meta import CheckpointMeta, RunState
from cifar_alexnet.cli import main
from cifar_alexnet.commands import evaluate as evaluate_command
from cifar_alexnet.commands import predict as predict_command
from cifar_alexnet.inference import evaluate, predict
from cifar_alexnet.training import curves
from cifar_alexnet.checkpoints.format import save_checkpoint
from cifar_alexnet.data.arrays import CIFAR10_CLASSES
from cifar_alexnet.model import AlexNet
from tolerances import LAYER_F32, assert_close

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class TinyClassifier(nn.Module):
    """flatten -> linear: a stand-in model that is fast and has no batch statistics."""

    def __init__(self, num_classes: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.linear = nn.Linear(3 * 32 * 32, num_classes)

    def forward(self, x):
        return self.linear(torch.flatten(x, 1)) * 10.0  # (N, C); scaled so predictions spread over classes


class MeanColourClassifier(nn.Module):
    """Logits = the mean of each channel: a red image is class 0, green 1, blue 2 (a model we control)."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # gives the model a device

    def forward(self, x):  # x: (N, 3, H, W)
        return x.mean(dim=(2, 3)) * 4.0  # (N, 3)


def _cli(command: str, argv) -> int:
    """The exit status of ``cifar-alexnet COMMAND ARGV...`` run in this process."""
    return main([command, *(str(a) for a in argv)])


# ------------------------------------------------------------------------------------ evaluate


@given(n=st.integers(1, 40), num_classes=st.integers(2, 6), batch_size=st.integers(1, 17),
       seed=st.integers(0, 2**16))
def test_confusion_matrix_accuracy_and_loss_match_direct_computation(n, num_classes, batch_size, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, num_classes, n)
    mean, std = rng.uniform(0.3, 0.6, 3), rng.uniform(0.2, 0.3, 3)
    model = TinyClassifier(num_classes, seed).train()

    result = evaluate.evaluate_model(model, (images, labels), batch_size=batch_size, mean=mean, std=std)

    # Direct computation, in float64, one image at a time with an explicit loop.
    x = (images.astype(np.float64) / 255 - mean) / std  # (N, 32, 32, 3)
    x = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())  # (N, 3, 32, 32)
    with torch.no_grad():
        logits = model.double()(x).numpy()
    model.float()
    expected = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(labels, logits.argmax(axis=1)):
        expected[t, p] += 1
    log_probs = logits - logits.max(axis=1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
    expected_loss = -log_probs[np.arange(n), labels].mean()

    assert model.training  # the mode is restored
    assert result.confusion.sum() == n
    # float32 vs float64 logits may flip an argmax only where two logits tie to ~1e-6
    top2 = np.sort(logits, axis=1)[:, -2:]
    if np.all(top2[:, 1] - top2[:, 0] > 1e-3):
        np.testing.assert_array_equal(result.confusion, expected)
        assert result.accuracy == np.trace(expected) / n
        per_class = [expected[c, c] / expected[c].sum() if expected[c].sum() else np.nan for c in range(num_classes)]
        np.testing.assert_array_equal(result.per_class_accuracy, per_class)
    assert_close(result.loss, expected_loss, LAYER_F32, "mean cross-entropy")


def test_loader_input_gives_same_result_as_arrays():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (23, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, 23)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    model = TinyClassifier(4, seed=1)
    from_arrays = evaluate.evaluate_model(model, (images, labels), mean=mean, std=std, classes="abcd")
    x = evaluate.normalize_uint8_images(images, mean, std)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.from_numpy(labels)), batch_size=5)
    from_loader = evaluate.evaluate_model(model, loader, classes="abcd")
    np.testing.assert_array_equal(from_arrays.confusion, from_loader.confusion)
    assert_close(from_loader.loss, from_arrays.loss, LAYER_F32, "loss")
    report = evaluate_command.format_report(from_loader, title="tiny")
    for name in "abcd":
        assert f"\n{name}" in report
    matrix_rows = report.split("columns: predicted class)\n")[1].splitlines()[1:]
    assert [list(map(int, row.split()[1:])) for row in matrix_rows] == from_loader.confusion.tolist()


def test_evaluate_refuses_uint8_without_normalisation_and_wrong_class_names():
    images, labels = np.zeros((2, 32, 32, 3), np.uint8), np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="mean= and std="):
        evaluate.evaluate_model(TinyClassifier(3, 0), (images, labels))
    with pytest.raises(ValueError, match="2 class names for a model with 3 outputs"):
        evaluate.evaluate_model(TinyClassifier(3, 0), (images, labels), mean=[0] * 3, std=[1] * 3, classes="ab")


def test_confusion_png_is_written(tmp_path):
    result = evaluate.EvalResult(confusion=np.array([[3, 1], [0, 4]]), loss=0.5, classes=("cat", "dog"))
    assert result.accuracy == 7 / 8
    path = evaluate_command.plot_confusion_matrix(result, tmp_path / "sub" / "confusion.png")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == ["confusion.png"]  # no temp file left


def _write_image_folder(root: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for name in CIFAR10_CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_evaluate_cli_on_an_image_folder(tmp_path, capsys):
    from cifar_alexnet.data.cifar10 import load_cifar10

    _write_image_folder(tmp_path / "data", per_class=2, seed=0)
    torch.manual_seed(0)
    model = AlexNet(hidden=16)
    meta = CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.29,) * 3, run=RunState(epoch=7))
    save_checkpoint(tmp_path / "run" / "best.safetensors", model, meta=meta)
    assert _cli("evaluate", [tmp_path / "run", "--data", tmp_path / "data", "--cache-dir", tmp_path / "cache",
                             "--device", "cpu", "--json", "--out", tmp_path / "cm.png", "--batch-size", "7"]) == 0
    printed = json.loads(capsys.readouterr().out)
    _, test = load_cifar10(tmp_path / "data", cache_dir=tmp_path / "cache")
    direct = evaluate.evaluate_model(model.eval(), (test.images, test.labels), mean=meta.mean, std=meta.std)
    assert printed["count"] == 20 and printed["epoch"] == 7
    assert printed["confusion_matrix"] == direct.confusion.tolist()
    assert (tmp_path / "cm.png").read_bytes().startswith(PNG_SIGNATURE)

    assert _cli("evaluate", [tmp_path / "run", "--data", tmp_path / "data", "--cache-dir", tmp_path / "cache",
                            "--limit-test", "15"]) == 2
    assert "multiple" in capsys.readouterr().err


def test_evaluate_cli_reports_a_missing_checkpoint(tmp_path, capsys):
    assert _cli("evaluate", [tmp_path / "nope.safetensors"]) == 2
    assert "nope.safetensors does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ plots


def _history(epochs: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.5 + 0.04 * e, "test_loss": 2.2 / e,
             "test_acc": 0.45 + 0.04 * e, "lr": 1e-3, "epoch_time_s": 1.0, "images_per_s": 100.0,
             "eval_train_loss": 1.9 / e, "eval_train_acc": 0.52 + 0.04 * e} for e in range(1, epochs + 1)]


def test_plot_history_writes_a_png(tmp_path):
    path = curves.plot_history(_history(5), tmp_path / "curves.png", compare_original=True, title="t")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(path).shape
    assert width > height > 100  # two panels side by side


def test_plot_cli_reads_run_directory(tmp_path, capsys):
    (tmp_path / "history.json").write_text(json.dumps(_history(3)))
    assert _cli("plot", [tmp_path, "--compare-original"]) == 0
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_SIGNATURE)
    (tmp_path / "history.json").write_text(json.dumps([{"epoch": 1}]))
    assert _cli("plot", [tmp_path]) == 2
    assert "train_loss" in capsys.readouterr().err


def test_published_numbers_are_the_write_ups(original_write_up):
    pattern = r"Epoch:\s+(\d+)/100, Acc\(train, test\) : \(([\d.]+)%, ([\d.]+)%\)"
    logged = {int(e): (float(a), float(b)) for e, a, b in re.findall(pattern, original_write_up.read_text())}
    assert logged == curves.ORIGINAL_PUBLISHED_ACCURACY
    assert max(test for _, test in logged.values()) == 90.34


# ------------------------------------------------------------------------------------ predict


def _solid(colour) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (32, 32, 3)).copy()


def test_probabilities_sum_to_one_and_follow_the_controlled_model():
    images = np.stack([_solid((255, 0, 0)), _solid((0, 255, 0)), _solid((0, 0, 255))])  # HWC red, green, blue
    probs = predict.predict_probabilities(MeanColourClassifier(), images, mean=[0, 0, 0], std=[1, 1, 1])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert probs.argmax(axis=1).tolist() == [0, 1, 2]
    expected = np.exp([4.0, 0, 0]) / np.exp([4.0, 0, 0]).sum()
    assert_close(probs[0], expected, LAYER_F32, "softmax of the controlled logits")
    ranking = predict.top_k(probs, ["red", "green", "blue"], k=2)
    assert [r[0][0] for r in ranking] == ["red", "green", "blue"]
    assert ranking[0][0][1] == pytest.approx(expected[0]) and len(ranking[0]) == 2


def test_predict_cli_with_a_checkpoint_whose_answer_we_set(tmp_path, capsys):
    model = AlexNet(hidden=16).eval()
    final_bn = model.classifier[9]  # the logits are BN8's output: gamma * x_hat + beta
    bias = torch.linspace(-1.0, 1.0, 10)
    bias[3] = 3.0  # class 3 ("cat") must win for every input
    with torch.no_grad():
        final_bn.weight.zero_()
        final_bn.bias.copy_(bias)
    save_checkpoint(tmp_path / "c.safetensors", model,
                    meta=CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3))
    Image.fromarray(_solid((10, 200, 30))).save(tmp_path / "a.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(tmp_path / "big.png")

    assert _cli("predict", [tmp_path / "c.safetensors", tmp_path / "a.png", tmp_path / "b.png", "--top-k", "3",
                            "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    softmax = torch.softmax(bias.double(), 0).numpy()
    for entry in out:
        assert [c["class"] for c in entry["top_k"]] == ["cat", "truck", "ship"]
        assert_close([c["probability"] for c in entry["top_k"]], softmax[[3, 9, 8]], LAYER_F32, "top-3")

    assert _cli("predict", [tmp_path / "c.safetensors", tmp_path / "big.png"]) == 2
    err = capsys.readouterr().err
    assert "big.png" in err and "48x64" in err and "--resize" in err
    assert _cli("predict", [tmp_path / "c.safetensors", tmp_path / "big.png", "--resize", "--top-k", "1"]) == 0
    assert "cat" in capsys.readouterr().out


def test_load_image_resize_centre_crops(tmp_path):
    wide = np.zeros((32, 96, 3), np.uint8)
    wide[:, 32:64] = (255, 0, 0)  # a red centre square between black side bands
    Image.fromarray(wide).save(tmp_path / "wide.png")
    image = predict.load_image(tmp_path / "wide.png", resize=True)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert (image[..., 0] == 255).all() and (image[..., 1:] == 0).all()
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="text.png: not an image"):
        predict.load_image(tmp_path / "text.png")


def _cat_checkpoint(path):
    """A checkpoint whose logits are the same for every input, with class 3 ("cat") first."""
    model = AlexNet(hidden=16).eval()
    with torch.no_grad():
        model.classifier[9].weight.zero_()
        model.classifier[9].bias.copy_(torch.linspace(-1.0, 1.0, 10))
        model.classifier[9].bias[3] = 3.0
    save_checkpoint(path, model, meta=CheckpointMeta(classes=CIFAR10_CLASSES, mean=(0.5,) * 3, std=(0.25,) * 3))
    return path


def test_predict_reports_a_bad_file_and_still_classifies_the_others(tmp_path, capsys):
    checkpoint = _cat_checkpoint(tmp_path / "c.safetensors")
    Image.fromarray(_solid((10, 200, 30))).save(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(_solid((200, 10, 30))).save(tmp_path / "b.png")
    files = [tmp_path / "a.png", tmp_path / "broken.png", tmp_path / "missing.png", tmp_path / "b.png"]
    assert _cli("predict", [checkpoint, *files, "--json", "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [entry["image"] for entry in out] == [str(f) for f in files]  # the order given, failures included
    assert [("error" in entry) for entry in out] == [False, True, True, False]
    assert out[0]["top_k"][0]["class"] == out[3]["top_k"][0]["class"] == "cat"
    assert "broken.png" in captured.err and "missing.png" in captured.err and "2 of 4" in captured.err
    assert captured.err.count("error:") == 3  # one line per bad file, one summary


def test_predict_reads_and_classifies_in_bounded_batches(tmp_path, capsys, monkeypatch):
    """More files than one batch: every one is classified, in order, and no batch holds more than BATCH images."""
    checkpoint = _cat_checkpoint(tmp_path / "c.safetensors")
    monkeypatch.setattr(predict_command, "BATCH", 3)
    seen = []
    real = predict.predict_probabilities
    monkeypatch.setattr(predict_command, "predict_probabilities", lambda m, x, *a: seen.append(len(x)) or real(m, x, *a))
    files = []
    for i in range(8):
        Image.fromarray(_solid((i * 30, 0, 0))).save(tmp_path / f"{i}.png")
        files.append(tmp_path / f"{i}.png")
    assert _cli("predict", [checkpoint, *files, "--device", "cpu", "--top-k", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(f) for f in files]
    assert seen == [3, 3, 2]


def test_predict_refuses_a_huge_image_before_decoding(tmp_path, monkeypatch):
    """The pixel count comes from the header: over the limit, the file is refused without decoding it."""
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "wide.png")
    monkeypatch.setattr(predict, "MAX_PREDICT_PIXELS", 40 * 50 - 1)
    decoded = []
    monkeypatch.setattr(Image.Image, "convert", lambda self, *a, **k: decoded.append(self) or self)
    with pytest.raises(ValueError, match=r"wide.png: 50x40 pixels is more than the 1,999"):
        predict.load_image(tmp_path / "wide.png", resize=True)
    assert not decoded


@pytest.mark.slow
def test_predict_on_a_144_megapixel_png_prints_its_refusal_and_no_warning(tmp_path):
    """Pillow warns above ~89 megapixels while reading the header; the user must see one error line, not that."""
    from data_factories import png_bytes
    from helpers import run_cli

    checkpoint = _cat_checkpoint(tmp_path / "c.safetensors")
    (tmp_path / "huge.png").write_bytes(png_bytes(12000, 12000))
    result = run_cli(["predict", checkpoint, tmp_path / "huge.png", "--resize", "--device", "cpu"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr  # the file's refusal, then the count of files not classified
    assert lines[0].startswith(f"error: {tmp_path / 'huge.png'}: refused before decoding, far too many pixels")
    assert lines[1] == "error: 1 of 1 image(s) could not be classified (see above)"


@pytest.mark.parametrize("device, words", [("banana", "not a device name"), ("vulkan", "runs on cpu, cuda or mps"),
                                           ("cuda:7", "cuda")])
@pytest.mark.parametrize("command", ["evaluate", "predict", "train"])
def test_a_device_this_machine_lacks_is_one_error_line(tmp_path, capsys, command, device, words):
    from cifar_alexnet.cli import main

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    checkpoint = _cat_checkpoint(tmp_path / "c.safetensors")
    Image.fromarray(_solid((10, 200, 30))).save(tmp_path / "a.png")
    argv = {"evaluate": ["evaluate", str(checkpoint), "--data", str(tmp_path)],
            "predict": ["predict", str(checkpoint), str(tmp_path / "a.png")],
            "train": ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")]}[command]
    assert main([*argv, "--device", device]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_evaluate_checks_its_out_path_before_any_work(tmp_path, capsys):
    from cifar_alexnet.cli import main

    (tmp_path / "a_file").write_text("")
    assert main(["evaluate", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "a_file" / "cm.png")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file, not a folder" in err  # refused before the checkpoint is even looked at


def test_evaluate_has_the_no_verify_option_its_messages_suggest():
    from cifar_alexnet.cli import build_parser

    assert build_parser("evaluate").parse_args(["evaluate", "c.safetensors", "--no-verify"]).no_verify is True
    assert build_parser("evaluate").parse_args(["evaluate", "c.safetensors"]).no_verify is False
