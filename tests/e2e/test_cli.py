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
    assert ok.returncode == 0, ok.stderr
    assert "(secret, 64 characters, from environment)" in ok.stdout and "f" * 64 not in ok.stdout
    assert any(line.split()[:2] == ["PRIVIA_ENV", "production"] for line in ok.stdout.splitlines())


def test_secrets_come_from_files_and_are_never_printed(tmp_path):
    key_file = tmp_path / "secret_key.txt"
    key_file.write_text("k" * 40 + "\n")
    from_file = privia("check-config", data_dir=tmp_path, PRIVIA_ENV="production", PRIVIA_SECRET_KEY_FILE=str(key_file),
                       PRIVIA_OAUTH_EXCHANGE_SECRET="exchange-secret-value")
    assert from_file.returncode == 0, from_file.stderr
    assert "(secret, 40 characters, from file)" in from_file.stdout
    assert "k" * 40 not in from_file.stdout and "exchange-secret-value" not in from_file.stdout
    both = privia("check-config", data_dir=tmp_path, PRIVIA_SECRET_KEY="k" * 40, PRIVIA_SECRET_KEY_FILE=str(key_file))
    assert both.returncode != 0 and "PRIVIA_SECRET_KEY and PRIVIA_SECRET_KEY_FILE are both set" in both.stderr
    missing = privia("check-config", data_dir=tmp_path, PRIVIA_SECRET_KEY_FILE=str(tmp_path / "absent"))
    assert missing.returncode != 0 and "PRIVIA_SECRET_KEY_FILE: cannot read" in missing.stderr


def test_the_pool_refuses_to_start_in_production_without_a_key(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRIVIA_")}
    environment.update(PRIVIA_DATA_DIR=str(tmp_path), PRIVIA_ENV="production", PRIVIA_SECRET_KEY="short")
    result = subprocess.run([str(BIN_DIR / "privia-fcgi")], env=environment, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "PRIVIA_SECRET_KEY must be at least 32 characters" in result.stderr
    assert not (tmp_path / "run" / "privia-fcgi.sock").exists()
