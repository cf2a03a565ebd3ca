"""Training: :mod:`~cifar_alexnet.training.config` (every option), :mod:`~cifar_alexnet.training.recipes`
(the two recipes, resuming), :mod:`~cifar_alexnet.training.options` (the command-line options),
:mod:`~cifar_alexnet.training.optim` (optimizer and learning-rate schedule),
:mod:`~cifar_alexnet.training.loaders` (the run's data), :mod:`~cifar_alexnet.training.loop`
(the loop itself), :mod:`~cifar_alexnet.training.run_dir` (the run directory and the run's record)
and :mod:`~cifar_alexnet.training.curves` (accuracy and loss curves).
"""
