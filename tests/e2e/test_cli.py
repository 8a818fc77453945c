"""The operator CLI, `privia`, run as an operator would."""

from __future__ import annotations

import os
import subprocess

from conftest import BIN_DIR, REPO


def privia(*args: str, data_dir, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRIVIA_")}
    environment.update(PRIVIA_DATA_DIR=str(data_dir), PRIVIA_MIGRATIONS_DIR=str(REPO / "Migrations"), **env)
    return subprocess.run([str(BIN_DIR / "privia"), *args], env=environment, capture_output=True, text=True, timeout=30)


def test_migrate_applies_then_reports_every_migration(tmp_path):
    migrations = sorted(p.name for p in (REPO / "Migrations").glob("*.sql"))
    status = privia("migrate", "--status", data_dir=tmp_path)
    assert status.returncode == 0, status.stderr
    assert [line.split("\t") for line in status.stdout.splitlines()] == [["pending", name] for name in migrations]

    applied = privia("migrate", data_dir=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [f"applied {name}" for name in migrations]
    assert privia("migrate", data_dir=tmp_path).stdout.strip() == "Database is up to date."

    lines = privia("migrate", "--status", data_dir=tmp_path).stdout.splitlines()
    assert all(line.startswith("applied 20") and line.endswith(name) for line, name in zip(lines, migrations))


def test_check_config_refuses_production_without_a_strong_key(tmp_path):
    refused = privia("check-config", data_dir=tmp_path, PRIVIA_ENV="production")
    assert refused.returncode != 0
    assert "PRIVIA_SECRET_KEY is required" in refused.stderr
    weak = privia("check-config", data_dir=tmp_path, PRIVIA_ENV="production", PRIVIA_SECRET_KEY="changeme")
    assert weak.returncode != 0 and "well-known" in weak.stderr
    ok = privia("check-config", data_dir=tmp_path, PRIVIA_ENV="production", PRIVIA_SECRET_KEY="f" * 64)
    assert ok.returncode == 0 and "secret key   set (64 characters)" in ok.stdout


def test_the_pool_refuses_to_start_in_production_without_a_key(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRIVIA_")}
    environment.update(PRIVIA_DATA_DIR=str(tmp_path), PRIVIA_ENV="production", PRIVIA_SECRET_KEY="short")
    result = subprocess.run([str(BIN_DIR / "privia-fcgi")], env=environment, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "PRIVIA_SECRET_KEY must be at least 32 characters" in result.stderr
    assert not (tmp_path / "run" / "privia-fcgi.sock").exists()
