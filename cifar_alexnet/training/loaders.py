"""The data a training run sees: the two splits, their normalisation, and the loaders.

The training split's per-channel mean and std normalise both splits (the original's z-score).
``--loader device`` (the default) keeps the whole set on the training device and augments a
batch at a time (:class:`~cifar_alexnet.data.device_loader.DeviceLoader`); ``--loader torchvision``
is the original notebook's PIL pipeline (:class:`~cifar_alexnet.data.torchvision_pipeline.TorchvisionLoader`).
Both can resume inside an epoch (``state_dict`` / ``load_state_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from cifar_alexnet.checkpoints.meta import CheckpointMeta
from cifar_alexnet.data import torchvision_pipeline as tv
from cifar_alexnet.data.cifar10 import channel_stats, class_balanced_subset, load_cifar10
from cifar_alexnet.data.device_loader import DeviceLoader
from cifar_alexnet.errors import DataError, OptionsError
from cifar_alexnet.runtime.distributed import DistContext
from cifar_alexnet.training.config import TrainConfig

__all__ = ["Data", "check_same_data", "load_data", "make_loaders"]


@dataclass
class Data:
    """The two splits (:class:`~cifar_alexnet.data.arrays.ArrayDataset`) and the normalisation."""

    train: Any
    test: Any
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.train.classes)

    @property
    def source(self) -> str:
        return str(self.train.source)


def load_data(config: TrainConfig, stored_meta: CheckpointMeta | None = None) -> Data:
    """CIFAR-10 (or the image folder ``--data`` names), ``--limit-*`` applied, with the training split's mean/std.

    On resume the data must be the run's own (:func:`check_same_data`), and the stored mean and
    std are used, so a run never changes its normalisation.
    """
    train_set, test_set = load_cifar10(config.data, download=config.download, verify=config.verify)
    if config.limit_train is not None:
        train_set = class_balanced_subset(train_set, config.limit_train, seed=config.seed, option="--limit-train")
    if config.limit_test is not None:
        test_set = class_balanced_subset(test_set, config.limit_test, seed=config.seed, option="--limit-test")
    mean, std = channel_stats(train_set.images)
    if stored_meta is not None:
        check_same_data(config.data, train_set.classes, (mean, std), stored_meta)
        mean, std = stored_meta.mean, stored_meta.std  # bit for bit what the run normalised with
    return Data(train_set, test_set, tuple(float(m) for m in mean), tuple(float(s) for s in std))


#: How far a resumed run's training-split mean/std may be from the stored ones. The same
#: images give the same values up to float32 summation order; a different subset or data set
#: differs in the third decimal or earlier.
SAME_DATA_TOLERANCE = 1e-4


def check_same_data(source: str | None, classes, stats: tuple, stored_meta: CheckpointMeta) -> None:
    """Raise a :class:`~cifar_alexnet.errors.DataError` unless the data at ``source`` is the data the checkpoint was trained on.

    Compared: the class names and the per-channel mean and std of the training split.
    """
    if tuple(classes) != stored_meta.classes:
        raise DataError(f"--data {source}: its classes {list(classes)} are not the run's {list(stored_meta.classes)}; "
                         "resume with the data set the run was started on")
    for name, now, then in zip(("mean", "std"), stats, (stored_meta.mean, stored_meta.std)):
        if max(abs(float(a) - float(b)) for a, b in zip(now, then)) > SAME_DATA_TOLERANCE:
            raise DataError(f"--data {source}: the training images' per-channel {name} "
                             f"{[round(float(v), 4) for v in now]} is not the run's {[round(float(v), 4) for v in then]}"
                             " -- it is not the data set (or subset) the run was trained on; resume with that one")


def make_loaders(config: TrainConfig, data: Data, device: torch.device, ctx: DistContext,
                 generator: torch.Generator):
    """The training loader (shuffled, augmented, drawing from ``generator``) and the test loader.

    ``drop_last`` is forced on when the last batch would hold a single image (BatchNorm cannot
    normalise one value) and in multi-process runs (every process must get the same share).
    """
    n_train = len(data.train.labels)
    drop_last = config.drop_last or ctx.enabled or n_train % config.batch_size == 1
    if config.loader == "torchvision":
        train_tf = (tv.original_train_transform if config.augment else tv.test_transform)(data.mean, data.std)
        common = dict(device=device, workers=config.workers, channels_last=config.channels_last)
        train_loader = tv.TorchvisionLoader(tv.TorchvisionDataset(data.train, train_tf), batch_size=config.batch_size,
                                            shuffle=True, generator=generator, drop_last=drop_last, **common)
        test_loader = tv.TorchvisionLoader(tv.TorchvisionDataset(data.test, tv.test_transform(data.mean, data.std)),
                                           batch_size=config.eval_batch_size, shuffle=False,
                                           generator=torch.Generator(), drop_last=False, **common)
    else:
        common = dict(mean=data.mean, std=data.std, device=device, channels_last=config.channels_last,
                      rank=ctx.rank, world_size=ctx.world_size)
        train_loader = DeviceLoader(torch.from_numpy(data.train.images), torch.from_numpy(data.train.labels).long(),
                                    batch_size=config.batch_size, train=True, augment=config.augment,
                                    generator=generator, drop_last=drop_last, **common)
        test_loader = DeviceLoader(torch.from_numpy(data.test.images), torch.from_numpy(data.test.labels).long(),
                                   batch_size=config.eval_batch_size, train=False, augment=False, generator=None,
                                   drop_last=False, **common)
    if len(train_loader) == 0:
        raise OptionsError(f"the training set ({n_train} images) is smaller than one batch "
                         f"(--batch-size {config.batch_size}); lower the batch size")
    return train_loader, test_loader
