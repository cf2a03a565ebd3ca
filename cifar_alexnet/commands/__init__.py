"""The subcommands of ``cifar-alexnet``, one module each: ``add_arguments(parser)`` and ``run(args)``.

Each turns a command line into calls of the package and prints the result; errors are raised
and reported once, by :func:`cifar_alexnet.cli.main`.
"""
