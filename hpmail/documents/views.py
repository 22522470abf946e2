"""Pages of documents: timetables and summaries in the browser, the print dialog, print jobs."""

from __future__ import annotations

from flask import Blueprint

from hpmail.documents import models  # noqa: F401  (the tables exist for every app)

bp = Blueprint("documents", __name__)
