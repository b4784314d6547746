"""The package version, in a leaf module so any layer can read it without importing ``cueflow``."""

__version__ = "0.1.0"
