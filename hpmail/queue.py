"""The Huey instance. Its storage is chosen from the app's config in ``init_app``.

Tasks are declared on ``huey`` at import time, before any app exists, so the instance is made
here with no storage of its own and ``init_app`` gives it one: a SQLite file in ``instance/``
(``fsync=True``) by default, or Redis when ``QUEUE_URL`` starts with ``redis://``. The queue only
says "look now": the database stays the source of truth (see ``hpmail.outbox.api``).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from flask import Flask, has_app_context
from huey import MemoryHuey
from huey.storage import MemoryStorage, SqliteStorage

from hpmail.config import private_file

huey = MemoryHuey("hpmail", utc=True, results=False)
_app: Flask | None = None


def init_app(app: Flask) -> None:
    """Give ``huey`` the storage named by the app's config and remember the app for tasks."""
    global _app
    _app = app
    url = app.config.get("QUEUE_URL") or ""
    if url.startswith("redis"):
        from huey.storage import RedisStorage

        huey.storage_class, huey.storage_kwargs = RedisStorage, {"url": url}
    elif url == "memory":
        huey.storage_class, huey.storage_kwargs = MemoryStorage, {}
    else:
        private_file(Path(app.config["QUEUE_FILE"]))
        huey.storage_class = SqliteStorage
        huey.storage_kwargs = {"filename": app.config["QUEUE_FILE"], "fsync": True, "timeout": 15}
    huey._immediate = bool(app.config.get("HUEY_IMMEDIATE"))
    huey.storage = huey.create_storage()


def app_context():
    """Return a context in which a task can use the database (the worker has no request)."""
    if has_app_context() or _app is None:
        return nullcontext()
    return _app.app_context()


__all__ = ["app_context", "huey", "init_app"]
