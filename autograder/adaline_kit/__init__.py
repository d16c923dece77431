"""adaline-kit: an autograded PyTorch assignment kit.

The kit is generic; the assignment it grades is one package under ``assignments/``, reached
through :mod:`adaline_kit.assignment`.
"""

__version__ = "0.1.0"
