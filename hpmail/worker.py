"""Entry point of ``huey_consumer hpmail.worker.huey``: builds the app, then exposes its queue.

The app's import-time objects (modules, models, routes: about 150,000) live as long as the
process. The cyclic garbage collector would walk all of them on each full collection, during the
import and again, several times, when the process exits (seconds on a busy machine): it is paused
while the app is built, and what was built is then frozen out of its reach (``gc.freeze``).
"""

import gc
import logging

gc.disable()

from hpmail import create_app  # noqa: E402
from hpmail.queue import huey  # noqa: E402

app = create_app()
# huey_consumer logs through its own handler; without this every line would be printed twice.
logging.getLogger("huey").propagate = False

import hpmail.documents.tasks  # noqa: E402,F401  (print jobs: rendering and their sweeper)
import hpmail.outbox.tasks  # noqa: E402,F401  (registers the tasks and the periodic sweeper)

gc.freeze()
gc.enable()

__all__ = ["app", "huey"]
