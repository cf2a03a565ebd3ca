"""The original notebook's input pipeline: PIL images through torchvision transforms.

The 2020 notebook fed its network the classic way: ``torchvision.datasets.CIFAR10`` gives
one PIL image at a time, a ``transforms.Compose`` augments and normalises it in a
``DataLoader`` worker process, and the loader collates the tensors into a batch. This
module rebuilds that pipeline on top of an :class:`~cifar_alexnet.data.arrays.ArrayDataset`:

* :func:`original_train_transform`: ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``,
  ``ColorJitter()`` (a no-op, kept for fidelity), ``RandomGrayscale(p=0.3)``, ``ToTensor()``,
  ``Normalize(mean, std)``;
* :func:`test_transform`: ``ToTensor()`` then ``Normalize(mean, std)``;
* :class:`TorchvisionDataset`: the array data set as a torch ``Dataset`` of
  ``(transform(PIL image), label)``;
* :class:`TorchvisionLoader`: the ``DataLoader`` over it, yielding batches on the training
  device, resumable inside an epoch like :class:`~cifar_alexnet.data.device_loader.DeviceLoader`.

The trainer uses it with ``--loader torchvision``; its default loader is the batched GPU
pipeline of :mod:`cifar_alexnet.data.device_loader`, which makes the same augmentations without
PIL. torchvision and PIL are imported only when a transform is built or an image is read,
so importing this module does not load them.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
from torch.utils.data import Dataset

from cifar_alexnet.data.arrays import ArrayDataset

__all__ = ["original_train_transform", "test_transform", "TorchvisionDataset", "TorchvisionLoader"]


def original_train_transform(mean: Sequence[float], std: Sequence[float], *, crop: bool = True,
                             flip: bool = True, color_jitter: bool = True, grayscale: bool = True):
    """The original training transform, as a ``torchvision.transforms.Compose`` on PIL images.

    ``RandomCrop(32, padding=4)`` (zero padding), ``RandomHorizontalFlip()`` (p = 0.5),
    ``ColorJitter()``, ``RandomGrayscale(p=0.3)``, ``ToTensor()``, ``Normalize(mean, std)``.

    ``ColorJitter()`` is kept because the original has it, but it changes nothing: called
    without arguments, brightness, contrast, saturation and hue are all ``None``, and the
    transform applies only the factors that are set. (The notebook's own print-out shows
    ``ColorJitter(brightness=None, contrast=None, saturation=None, hue=None)``.) The batched
    pipeline in :mod:`cifar_alexnet.data.device_loader` therefore leaves it out.

    The keyword flags drop single steps (for ablations and tests).
    """
    from torchvision import transforms

    steps = []
    if crop:
        steps.append(transforms.RandomCrop(32, padding=4))
    if flip:
        steps.append(transforms.RandomHorizontalFlip())
    if color_jitter:
        steps.append(transforms.ColorJitter())  # all factors None: the identity, see the docstring
    if grayscale:
        steps.append(transforms.RandomGrayscale(p=0.3))
    steps += [transforms.ToTensor(), transforms.Normalize(tuple(mean), tuple(std))]
    return transforms.Compose(steps)


def test_transform(mean: Sequence[float], std: Sequence[float]):
    """The original test transform: ``ToTensor()`` then ``Normalize(mean, std)``."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(tuple(mean), tuple(std))])


test_transform.__test__ = False  # its name starts with "test": tell pytest it is not a test


class TorchvisionDataset(Dataset):
    """An :class:`ArrayDataset` as a torch ``Dataset`` of ``(transform(PIL image), label)``.

    This is how the original fed its ``DataLoader``: every image becomes a PIL image, goes
    through the transform in a worker process, and is collated into a batch.
    """

    def __init__(self, ds: ArrayDataset, transform: Callable | None = None):
        self.ds = ds
        self.transform = transform

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int):
        from PIL import Image

        image = Image.fromarray(self.ds.images[index])  # (32, 32, 3) uint8 -> RGB PIL image
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.ds.labels[index])



class TorchvisionLoader:
    """The original input pipeline: a ``DataLoader`` over a :class:`TorchvisionDataset`.

    Every image goes through PIL on the CPU, batches are collated and copied to ``device``.
    Slow, but it is what the notebook did; kept to compare against.

    Resuming inside an epoch works as in :class:`~cifar_alexnet.data.device_loader.DeviceLoader`:
    :meth:`state_dict` is the generator's state at the start of the epoch and the number of
    batches done; after :meth:`load_state_dict`, ``iter()`` re-draws that epoch and drops the
    batches already done (with ``workers=0`` their transforms draw from torch's global
    generator, so a caller restoring that generator does it after ``iter()``).

    Yields ``(x, y)`` on ``device``: x ``(B, 3, 32, 32)`` float, y ``(B,)`` int64.
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, shuffle: bool, generator: torch.Generator,
                 device: torch.device, workers: int, drop_last: bool, channels_last: bool):
        from torch.utils.data import DataLoader

        self.device, self.generator = device, generator
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                 num_workers=workers, drop_last=drop_last,
                                 pin_memory=device.type == "cuda", persistent_workers=False)
        self._batches_to_skip = 0
        self._epoch_start_state: torch.Tensor | None = None
        self._batches_done = 0

    def __len__(self) -> int:
        return len(self.loader)

    def state_dict(self) -> dict[str, object]:
        """``{"generator_state": ByteTensor, "batches_done": int}``, as ``DeviceLoader.state_dict``."""
        if self._epoch_start_state is not None:
            return {"generator_state": self._epoch_start_state.clone(), "batches_done": self._batches_done}
        return {"generator_state": self.generator.get_state(), "batches_done": 0}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.generator.set_state(state["generator_state"])
        self._batches_to_skip, self._epoch_start_state = int(state["batches_done"]), None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self._epoch_start_state = self.generator.get_state()
        batches = iter(self.loader)
        skip, self._batches_to_skip = self._batches_to_skip, 0
        for _ in range(skip):  # here, not in the generator below: the skipping happens at iter() time
            next(batches)
        self._batches_done = skip
        return self._on_device(batches)

    def _on_device(self, batches) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in batches:
            self._batches_done += 1
            yield (x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format),
                   y.to(self.device, non_blocking=True))
        self._epoch_start_state, self._batches_done = None, 0
