"""Subcommands of the ``neuro`` CLI, one module each (``add_arguments``, ``run``)."""
