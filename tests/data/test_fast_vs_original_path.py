"""The device-resident data path and the original PIL + DataLoader path train the same model.

With augmentation off both pipelines must hand the network the same normalised images, so
training the same initial model with the same hyperparameters must give the same weights
and losses up to rounding. The runs train in float64: in float32 the gradient of a BatchNorm
shift is a sum whose terms nearly cancel, so its rounding -- which differs between CPUs with
different vector widths -- shows at the 1e-5 level after a few steps (seen on an AVX2-only
AMD EPYC) and would hide what this test is about, the images. Full-batch steps (the batch is the whole training set)
make the shuffling order irrelevant: BatchNorm statistics and the mean loss do not depend on
the order of the images in a batch, only their float summation does. Dropout is off (its
masks would follow the image order) and the optimizer is SGD (see ``test_distributed`` for
why Adam would turn rounding noise into visible differences of some biases).
"""

from __future__ import annotations

import pytest

import tolerances
from cifar_alexnet.checkpoints.format import load_checkpoint
from cifar_alexnet.cli import main
from helpers import read_history, write_tiny_data

PARITY = tolerances.TRAINING_PARITY_F64


@pytest.mark.slow
def test_device_loader_and_torchvision_loader_train_identically(tmp_path, monkeypatch):
    data = write_tiny_data(tmp_path / "data", "folder", train_per_class=1, test_per_class=1, seed=21)
    monkeypatch.setenv("CIFAR_ALEXNET_CACHE", str(tmp_path / "cache"))
    common = ["--data", str(data), "--epochs", "3", "--batch-size", "10", "--hidden", "32", "--dropout", "0",
              "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0", "--no-augment", "--device", "cpu",
              "--quiet", "--seed", "2", "--dtype", "float64"]
    assert main(["train", *common, "--out", str(tmp_path / "device")]) == 0
    assert main(["train", *common, "--out", str(tmp_path / "pil"), "--loader", "torchvision", "--workers", "0"]) == 0

    fast = load_checkpoint(tmp_path / "device" / "last.safetensors").state_dict
    original = load_checkpoint(tmp_path / "pil" / "last.safetensors").state_dict
    worst = max(tolerances.assert_close(fast[key].numpy(), original[key].numpy(), PARITY, key)
                for key in fast if not key.endswith("num_batches_tracked"))
    print(f"device loader vs torchvision loader after 3 SGD steps (float64): largest relative difference {worst:.2e}")
    for r1, r2 in zip(read_history(tmp_path / "device"), read_history(tmp_path / "pil"), strict=True):
        for key in ("train_loss", "test_loss"):
            assert abs(r1[key] - r2[key]) <= PARITY * max(1.0, abs(r1[key])), (key, r1[key], r2[key])
        assert r1["train_acc"] == r2["train_acc"] and r1["test_acc"] == r2["test_acc"]
    # three full-batch steps really changed the loss (a frozen model would pass trivially)
    losses = [r["train_loss"] for r in read_history(tmp_path / "device")]
    assert losses[0] != losses[-1]
