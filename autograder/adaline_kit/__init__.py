"""adaline-kit: an autograded PyTorch assignment kit (Adaline trained three ways)."""

__version__ = "0.1.0"
