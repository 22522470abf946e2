"""Entry point of ``huey_consumer hpmail.worker.huey``: builds the app, then exposes its queue."""

import logging

from hpmail import create_app
from hpmail.queue import huey

app = create_app()
# huey_consumer logs through its own handler; without this every line would be printed twice.
logging.getLogger("huey").propagate = False

import hpmail.documents.tasks  # noqa: E402,F401  (print jobs: rendering and their sweeper)
import hpmail.outbox.tasks  # noqa: E402,F401  (registers the tasks and the periodic sweeper)

__all__ = ["app", "huey"]
