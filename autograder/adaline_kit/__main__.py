"""``python -m adaline_kit``: the same as the ``adaline-kit`` command."""

from .cli import run

run()
