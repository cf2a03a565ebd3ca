"""The original 2020 notebook's model and training loop, kept as close to the write-up as possible.

This file is the *baseline* of ``bench/train_throughput.py``: the loop a student would write
from the PyTorch tutorial. Its structure is the write-up's, line for line:

* a ``torch.utils.data.DataLoader`` over the torchvision PIL pipeline (``RandomCrop(32, 4)``,
  ``RandomHorizontalFlip``, ``ColorJitter()``, ``RandomGrayscale(0.3)``, ``ToTensor``,
  ``Normalize``), ``shuffle=True``, ``num_workers=4``, batch 512;
* per batch: ``.to(device)``, ``Variable(...)``, ``zero_grad`` / forward / loss / ``backward`` / ``step``;
* after every epoch, in ``eval`` mode under ``no_grad``, one pass over the *training* loader
  and one over the test loader, each calling ``.item()`` on every batch.

Quirks of the original, reproduced or noted (not fixed -- that is the point of a baseline):

1. The "training accuracy" pass iterates ``trainloader``, i.e. the *augmented* training
   images (random crops, flips, 30 % grayscale), in eval mode. It is not the accuracy on
   the training set as stored. Reproduced.
2. ``loss_train`` / ``loss_test`` collect one ``loss.item()`` per *batch* across *all* epochs
   (100 epochs x 98 batches), never averaged per epoch, so the loss curves' x-axis is batches.
   Reproduced (the lists are returned).
3. The evaluation loops call ``inputs.cuda()`` unconditionally, so the notebook cannot run
   without a GPU. Changed to ``.to(device)`` -- the only deliberate change.
4. ``Variable`` has been a no-op since PyTorch 0.4; kept because the original has it.
5. ``ColorJitter()`` with no arguments does nothing; kept (it costs a PIL round trip per image).
6. The class hard-codes ``nn.BatchNorm1d(10)`` at the end, so ``num_classes != 10`` fails. Kept.
7. The model is wrapped in ``nn.DataParallel`` (keys saved as ``module.features2.0.weight``).
   On a CPU-only machine ``DataParallel`` just calls the module.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
from torch.autograd import Variable

__all__ = ["AlexNet_SukJoon", "make_original_loaders", "original_train_epoch", "original_eval_pass",
           "run_original"]

CLASSES = 10
DROPOUT_RATE = 0.2  # 0.2, 0.3
BATCH_SIZE = 512


class AlexNet_SukJoon(nn.Module):  # noqa: N801 - the original's name
    """The write-up's network, as written there (module names ``features2`` / ``classifier2``)."""

    def __init__(self, num_classes=CLASSES):
        super(AlexNet_SukJoon, self).__init__()

        self.features2 = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2),
            nn.Conv2d(64, 192, kernel_size=3, padding=2),
            nn.BatchNorm2d(192),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.BatchNorm2d(384),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2)
        )

        self.classifier2 = nn.Sequential(
            nn.Dropout(p=DROPOUT_RATE),
            nn.Linear(4096, 2048),
            nn.BatchNorm1d(2048),
            nn.ReLU(inplace=True),
            nn.Dropout(p=DROPOUT_RATE),
            nn.Linear(2048, 2048),
            nn.BatchNorm1d(2048),
            nn.ReLU(inplace=True),
            nn.Linear(2048, num_classes),
            nn.BatchNorm1d(10),
        )

    def forward(self, x):
        x = self.features2(x)
        x = x.view(x.size(0), -1)
        x = self.classifier2(x)
        return x


def make_original_loaders(train, test, mean: Sequence[float], std: Sequence[float], *,
                          batch_size: int = BATCH_SIZE, num_workers: int = 4):
    """The notebook's two DataLoaders, over ``cifar_alexnet.data.cifar10`` ArrayDatasets instead of torchvision's CIFAR10.

    Args:
        train, test: :class:`cifar_alexnet.data.arrays.ArrayDataset` (uint8 NHWC images).
        mean, std: per-channel normalisation in [0, 1] units.
        batch_size: 512 in the original.
        num_workers: 4 in the original.

    Returns:
        ``(trainloader, testloader)``.
    """
    from cifar_alexnet.data.torchvision_pipeline import (TorchvisionDataset, original_train_transform, test_transform)

    trainset = TorchvisionDataset(train, original_train_transform(mean, std))
    trainloader = torch.utils.data.DataLoader(trainset, batch_size=batch_size,
                                              shuffle=True, num_workers=num_workers)
    testset = TorchvisionDataset(test, test_transform(mean, std))
    testloader = torch.utils.data.DataLoader(testset, batch_size=batch_size,
                                             shuffle=False, num_workers=num_workers)
    return trainloader, testloader


def original_train_epoch(net: nn.Module, trainloader, criterion, optimizer, device,
                         max_batches: int | None = None) -> int:
    """One epoch of the notebook's training loop. Returns the number of images trained on.

    ``max_batches`` (not in the original) stops early, for benchmarks.
    """
    net.train()
    seen = 0
    for i, data in enumerate(trainloader, 0):
        if max_batches is not None and i >= max_batches:
            break
        inputs, labels = data[0].to(device), data[1].to(device)  # get the inputs
        inputs, labels = Variable(inputs), Variable(labels)  # wrap them in Variable

        optimizer.zero_grad()  # zero the parameter gradients
        outputs = net(inputs)

        # forward + backward + optimize
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        seen += labels.size(0)
    return seen


def original_eval_pass(net: nn.Module, loader, criterion, device, losses: list) -> tuple[int, int]:
    """One of the notebook's evaluation loops. Appends one ``loss.item()`` per batch to ``losses``.

    Returns:
        ``(correct, total)``.
    """
    correct, total = 0, 0
    net.eval()
    with torch.no_grad():
        for data in loader:
            inputs, labels = data
            inputs = inputs.to(device)  # the original: inputs.cuda()
            labels = labels.to(device)  # the original: labels.cuda()

            outputs = net(inputs)
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()

            loss = criterion(outputs, labels)
            losses.append(loss.item())
    return correct, total


def run_original(trainloader, testloader, *, device: str | torch.device = "cpu", end_epoch: int = 100,
                 log: Callable[[str], Any] = print) -> dict[str, list]:
    """The notebook's whole training run: DataParallel model, Adam 1e-3, ``end_epoch`` epochs.

    Returns:
        ``{"net", "acc_train", "acc_test", "loss_train", "loss_test", "epoch_time_s"}`` -- the
        notebook's four lists (the loss lists hold one value per batch, quirk 2) plus the net and timings.
    """
    device = torch.device(device)
    net = AlexNet_SukJoon()
    net = torch.nn.DataParallel(net)
    net.to(device)  # Present it to GPU

    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.001)
    log("[Device] {}\n".format(device))

    acc_train, acc_test, loss_train, loss_test, epoch_time_s = [], [], [], [], []
    for epoch in range(1, end_epoch + 1):
        start = time.perf_counter()
        original_train_epoch(net, trainloader, criterion, optimizer, device)
        correct_train, total_train = original_eval_pass(net, trainloader, criterion, device, loss_train)
        correct_test, total_test = original_eval_pass(net, testloader, criterion, device, loss_test)
        acc_train.append(100 * correct_train / total_train)
        acc_test.append(100 * correct_test / total_test)
        epoch_time_s.append(time.perf_counter() - start)
        if epoch % 5 == 0:
            log('\tEpoch: %3d/%d, Acc(train, test) : (%.2f%%, %.2f%%)'
                % (epoch, end_epoch, acc_train[-1], acc_test[-1]))
    return {"net": net, "acc_train": acc_train, "acc_test": acc_test, "loss_train": loss_train,
            "loss_test": loss_test, "epoch_time_s": epoch_time_s}
