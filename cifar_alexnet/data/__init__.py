"""CIFAR-10 on disk -> uint8 arrays in memory -> normalised, augmented batches on the device.

In reading order: :mod:`~cifar_alexnet.data.cifar10` (one entry point, ``load_cifar10``, and the
normalisation statistics), :mod:`~cifar_alexnet.data.arrays` (the in-memory data set),
the two readers :mod:`~cifar_alexnet.data.official_archive` and
:mod:`~cifar_alexnet.data.image_folder` (with :mod:`~cifar_alexnet.data.checked_tar` for
tarballs and :mod:`~cifar_alexnet.data.decode_cache` for decoded images), and the two loaders:
:mod:`~cifar_alexnet.data.device_loader` (the default: the whole set on the device) and
:mod:`~cifar_alexnet.data.torchvision_pipeline` (the original notebook's PIL pipeline).
"""
