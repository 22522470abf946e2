"""The instance folder and the database and queue files are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hpmail import create_app
from hpmail.extensions import db


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask():
    """The umask of most servers (022), under which new files are world-readable by default."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def build(instance: Path):
    config = {"TESTING": True, "INSTANCE_PATH": str(instance), "DEMO": False}
    app = create_app(config)
    with app.app_context():
        db.create_all()
        from hpmail.queue import huey

        huey.pending_count()  # opens the queue file
        db.engine.dispose()
    return app


def test_the_instance_folder_is_created_0700_and_its_files_0600(tmp_path, usual_umask):
    instance = tmp_path / "instance"
    build(instance)
    assert mode(instance) == 0o700
    for name in ("hpmail.sqlite3", "queue.sqlite3", "secret_key", "fernet.key"):
        assert mode(instance / name) == 0o600, name
    for path in instance.glob("*.sqlite3-*"):  # WAL and shared-memory files, when left
        assert mode(path) & 0o077 == 0, path.name


def test_an_instance_left_world_readable_by_an_older_version_is_tightened(tmp_path, usual_umask):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    (instance / "hpmail.sqlite3").touch(mode=0o644)
    (instance / "queue.sqlite3").touch(mode=0o644)
    build(instance)
    assert mode(instance) == 0o700
    assert mode(instance / "hpmail.sqlite3") == 0o600
    assert mode(instance / "queue.sqlite3") == 0o600
