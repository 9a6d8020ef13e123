"""couturier: an ML platform for a marketplace of pre-loved luxury fashion."""

__version__ = "0.1.0"
__all__ = ["__version__"]
