"""Which destinations each warehouse setting offers, what they declare, and that naming one
never loads a driver nobody uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import TributaryError
from storage.destinations import DESTINATIONS, destination_class, destinations_for_warehouse

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("warehouse, offered", [
    ("local", ["DuckDB warehouse", "Local Parquet files"]),
    ("postgres", ["PostgreSQL"]),
    ("redshift", ["Amazon Redshift", "Amazon S3 files"]),
    ("snowflake", ["Snowflake"]),
])
def test_each_warehouse_offers_its_destinations(warehouse, offered):
    assert [destination_class(n).title for n in destinations_for_warehouse(warehouse)] == offered


def test_each_destination_is_registered_by_name_in_its_own_package_beside_its_configuration():
    for name in DESTINATIONS:
        cls = destination_class(name)
        assert (cls.name, cls.__module__) == (name, f"storage.destinations.{name}.destination")
        assert (ROOT / "storage" / "destinations" / name / "configuration.py").is_file()


def test_an_unknown_warehouse_or_destination_is_refused_with_the_choices():
    with pytest.raises(TributaryError, match="choose one of local, postgres, redshift, snowflake"):
        destinations_for_warehouse("bigquery")
    with pytest.raises(TributaryError, match="unknown destination 'bigquery'"):
        destination_class("bigquery")


def test_file_destinations_do_not_offer_upsert_and_tables_offer_every_load_type():
    every = {"incremental", "truncate_insert", "upsert"}
    for name in DESTINATIONS:
        load_types = set(destination_class(name).capabilities.load_types)
        assert load_types == (every - {"upsert"} if name in ("parquet", "s3") else every), name


def test_json_goes_to_each_systems_own_type():
    assert {n: destination_class(n).capabilities.json_type.split()[0] for n in DESTINATIONS} == {
        "duckdb": "JSON", "parquet": "JSON", "postgres": "JSONB", "redshift": "SUPER", "s3": "JSON",
        "snowflake": "VARIANT"}


def test_choosing_destinations_loads_no_driver_and_needs_no_server(tmp_path):
    """What the Destination stage does: list, instantiate and describe every destination, in
    a fresh interpreter; no database driver may be imported by that."""
    script = (
        "import sys\n"
        "from storage.destinations import DESTINATIONS, destination_class\n"
        "for name in DESTINATIONS:\n"
        "    print(destination_class(name)().describe_target('orders'))\n"
        "loaded = [m for m in ('psycopg', 'boto3', 'botocore', 'snowflake.connector') if m in sys.modules]\n"
        "print('loaded:', loaded)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "TRIBUTARY_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("loaded: []")
    assert "table public.orders in PostgreSQL" in out.stdout
