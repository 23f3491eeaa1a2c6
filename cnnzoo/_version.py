"""The one source of cnnzoo's version: read by the build (pyproject.toml) and by the package."""

__version__ = "0.2.0"
