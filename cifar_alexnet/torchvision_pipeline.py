"""The original notebook's input pipeline: PIL images through torchvision transforms.

The 2020 notebook fed its network the classic way: ``torchvision.datasets.CIFAR10`` gives
one PIL image at a time, a ``transforms.Compose`` augments and normalises it in a
``DataLoader`` worker process, and the loader collates the tensors into a batch. This
module rebuilds that pipeline on top of an :class:`~cifar_alexnet.array_dataset.ArrayDataset`:

* :func:`original_train_transform`: ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``,
  ``ColorJitter()`` (a no-op, kept for fidelity), ``RandomGrayscale(p=0.3)``, ``ToTensor()``,
  ``Normalize(mean, std)``;
* :func:`test_transform`: ``ToTensor()`` then ``Normalize(mean, std)``;
* :class:`TorchvisionDataset`: the array data set as a torch ``Dataset`` of
  ``(transform(PIL image), label)``.

The trainer uses it with ``--loader torchvision``; its default loader is the batched GPU
pipeline of :mod:`cifar_alexnet.device_data`, which makes the same augmentations without
PIL. torchvision and PIL are imported only when a transform is built or an image is read,
so importing this module does not load them.
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch.utils.data import Dataset

from cifar_alexnet.array_dataset import ArrayDataset

__all__ = ["original_train_transform", "test_transform", "TorchvisionDataset"]


def original_train_transform(mean: Sequence[float], std: Sequence[float], *, crop: bool = True,
                             flip: bool = True, color_jitter: bool = True, grayscale: bool = True):
    """The original training transform, as a ``torchvision.transforms.Compose`` on PIL images.

    ``RandomCrop(32, padding=4)`` (zero padding), ``RandomHorizontalFlip()`` (p = 0.5),
    ``ColorJitter()``, ``RandomGrayscale(p=0.3)``, ``ToTensor()``, ``Normalize(mean, std)``.

    ``ColorJitter()`` is kept because the original has it, but it changes nothing: called
    without arguments, brightness, contrast, saturation and hue are all ``None``, and the
    transform applies only the factors that are set. (The notebook's own print-out shows
    ``ColorJitter(brightness=None, contrast=None, saturation=None, hue=None)``.) The batched
    pipeline in :mod:`cifar_alexnet.device_data` therefore leaves it out.

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

