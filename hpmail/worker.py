"""Entry point of ``huey_consumer hpmail.worker.huey``: builds the app, then exposes its queue."""

from hpmail import create_app
from hpmail.queue import huey

app = create_app()

import hpmail.delivery.tasks  # noqa: E402,F401  (registers the tasks and the periodic sweeper)

__all__ = ["app", "huey"]
