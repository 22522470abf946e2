"""Fixtures of the documents tests (the print dialog's are in ``printing.py``)."""

from tests.documents.printing import school, selection_of, sender  # noqa: F401
