"""Fixtures of the documents tests (the print dialog's are in ``print_fixtures.py``)."""

from tests.documents.print_fixtures import school, selection_of, sender  # noqa: F401
