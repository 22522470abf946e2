"""The Huey instance. Its storage is chosen from the app's config in ``init_app``.

Tasks are declared on ``huey`` at import time, before any app exists, so the instance is made
here with no storage of its own and ``init_app`` gives it one: a SQLite file in ``instance/``
(``fsync=True``) by default, or Redis when ``QUEUE_URL`` starts with ``redis://``. The queue only
says "look now": the database stays the source of truth (see ``hpmail.outbox.api``).

Its consumer stops gracefully on SIGTERM (what systemd, Docker and honcho send) as on SIGINT:
each worker finishes the e-mail in flight and gives its other claimed rows back (``stopping``).
"""

from __future__ import annotations

import signal
import threading
from contextlib import nullcontext
from pathlib import Path

from flask import Flask, has_app_context
from huey import MemoryHuey
from huey.consumer import Consumer
from huey.storage import MemoryStorage, SqliteStorage

from hpmail.config import private_file

_app: Flask | None = None
# Set when this process's consumer is asked to stop (thread workers share it).
_stopping = threading.Event()
# The consumer's own stop flag: a pipe that forked worker processes share with their parent.
_stop_flag = None


class GracefulConsumer(Consumer):
    """huey's consumer, stopped gracefully by SIGTERM as by SIGINT; a second signal stops at once.

    huey stops at once on SIGTERM: a worker killed mid-batch leaves its claimed rows waiting for
    another worker to notice. Here both signals set ``stopping``, which the delivery loop reads
    between two e-mails (``outbox.send``), then huey waits for the workers to end their task.
    """

    def __init__(self, huey, **options) -> None:
        global _stop_flag
        options["graceful_signal"] = "TERM"
        super().__init__(huey, **options)
        self._signal_actions[signal.SIGINT] = (False, True)  # (restart, graceful)
        _stop_flag = self.stop_flag

    def stop(self, graceful: bool = False) -> None:
        _stopping.set()
        super().stop(graceful=graceful)


class HpmailHuey(MemoryHuey):
    """The queue of hpmail's tasks; ``huey_consumer`` runs it with ``GracefulConsumer``."""

    def create_consumer(self, **options) -> GracefulConsumer:
        return GracefulConsumer(self, **options)


huey = HpmailHuey("hpmail", utc=True, results=False)


def stopping() -> bool:
    """Tell whether this worker was asked to stop: a delivery then gives its other rows back."""
    return _stopping.is_set() or (_stop_flag is not None and _stop_flag.is_set())


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


__all__ = ["app_context", "huey", "init_app", "stopping"]
