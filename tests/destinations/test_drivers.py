"""A warehouse whose driver is not installed (the drivers are extras) says which package it
needs and how to install it, in the run's error and on the Settings page's check."""

from __future__ import annotations

import sys

import pytest

from storage.destinations.base import LoadError
from storage.destinations.drivers import driver


def test_a_missing_driver_names_its_package_and_how_to_install_it():
    with pytest.raises(LoadError) as missing:
        driver("tributary_no_such_driver", "psycopg[binary]", "PostgreSQL")
    assert str(missing.value) == ("PostgreSQL: its driver (psycopg[binary]) is not installed: make extras "
                                  "(or .venv/bin/uv pip install -r requirements-extras.txt)")


def test_the_postgres_check_says_so_when_psycopg_is_missing(tributary, monkeypatch, postgres_url):
    from storage.destinations.settings import check_connections

    monkeypatch.setenv("TRIBUTARY_POSTGRES_URL", postgres_url)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an install without the extras has
    [check] = check_connections("postgres")
    assert not check.ok and "psycopg[binary]) is not installed: make extras" in check.message, check.message


def test_the_celery_executor_without_celery_says_how_to_install_it(monkeypatch):
    from common.errors import TributaryError
    from core.executors import executor_class

    monkeypatch.setitem(sys.modules, "celery", None)
    monkeypatch.delitem(sys.modules, "core.celery_executor", raising=False)
    with pytest.raises(TributaryError, match="executor: celery needs celery, which is not installed: make extras"):
        executor_class("celery")
