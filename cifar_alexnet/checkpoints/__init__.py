"""Weights on disk: one safetensors file per checkpoint, its metadata, and the files of other origins.

In reading order: :mod:`~cifar_alexnet.checkpoints.format` (save and load),
:mod:`~cifar_alexnet.checkpoints.meta` (what a checkpoint records, as one typed record),
:mod:`~cifar_alexnet.checkpoints.schema` (the file's layout, checked before a tensor is read),
:mod:`~cifar_alexnet.checkpoints.safe_load` (``.pth`` pickles without running code),
:mod:`~cifar_alexnet.checkpoints.original_pth` (the 2020 notebook's weights) and
:mod:`~cifar_alexnet.checkpoints.export` (a small float16 file to share).
"""
