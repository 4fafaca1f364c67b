"""The warehouses' drivers are extras: the embedded default (DuckDB, Parquet) needs none of
them, so `make run` does not install them (requirements-extras.txt, `make extras`). A
destination imports its driver through driver(), which says how to install it when missing."""

from __future__ import annotations

from importlib import import_module

from storage.destinations.base import LoadError

INSTALL_HINT = "make extras (or .venv/bin/uv pip install -r requirements-extras.txt)"


def driver(module: str, package: str, destination: str):
    """The driver module, or a LoadError naming the package and how to install it."""
    try:
        return import_module(module)
    except ImportError:
        raise LoadError(f"{destination}: its driver ({package}) is not installed: {INSTALL_HINT}") from None
