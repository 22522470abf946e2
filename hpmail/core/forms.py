"""One way to refuse input: the exception services raise, and the page that shows a form again.

Every POST is read by a WTForms form; services receive its clean values and raise
``InputRefused`` (or a subclass) with a message per field; the view hands both to ``form_again``,
which puts each message beside its field and answers 422. htmx swaps 422 answers like 2xx ones
(``responseHandling`` in ``templates/base.html``), so the same page serves both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask import Response
from wtforms import Form, SelectMultipleField

from hpmail.core.web import render, whole_number

# The status of a page whose form is shown again with its errors.
INVALID = 422


class InputRefused(ValueError):
    """Input a rule refuses: ``errors`` maps a form field to its messages, ``general`` holds the
    messages that belong to no field. Messages are English msgids already translated.

    ``InputRefused("message")`` is a general message, ``InputRefused("message", field="code")``
    one field's, ``InputRefused({"label": "…", "address": ["…"]})`` several fields'.
    """

    def __init__(
        self,
        errors: Mapping[str, str | Iterable[str]] | str | None = None,
        *,
        field: str | None = None,
        general: Iterable[str] = (),
    ):
        self.general = [str(message) for message in general]
        self.errors: dict[str, list[str]] = {}
        if isinstance(errors, Mapping):
            for name, messages in errors.items():
                listed = [messages] if isinstance(messages, str) else list(messages)
                if listed:
                    self.errors[name] = [str(message) for message in listed]
        elif errors is not None and field is not None:
            self.errors[field] = [str(errors)]
        elif errors is not None:
            self.general.append(str(errors))
        super().__init__("; ".join(self.messages()))

    def messages(self) -> list[str]:
        """Return every message, the fields' first."""
        return [message for messages in self.errors.values() for message in messages] + list(
            self.general
        )

    def __str__(self) -> str:
        return " ".join(self.messages())


def show_errors(form: Form, refused: InputRefused, on_field: str | None = None) -> list[str]:
    """Put each message of ``refused`` beside its field of ``form``; return the others.

    Messages for no field of the form go on ``on_field`` when it is given.
    """
    loose = []
    for name, messages in refused.errors.items():
        if name in form:
            form[name].errors = list(form[name].errors or []) + messages
        else:
            loose.extend(messages)
    loose.extend(refused.general)
    if on_field is not None and on_field in form and loose:
        form[on_field].errors = list(form[on_field].errors or []) + loose
        return []
    return loose


def form_again(
    template: str,
    fragment: str | None = None,
    *,
    form: Form | None = None,
    refused: InputRefused | None = None,
    on_field: str | None = None,
    errors_key: str | None = None,
    **context,
) -> Response:
    """Render the page of a refused form again, with status 422.

    ``refused``'s messages go beside their fields of ``form`` (the form the template shows,
    passed in ``context`` under its own name, or as ``form``); the others go on ``on_field``, or
    to the template as the list ``errors_key``. An htmx request gets ``fragment`` only.
    """
    if form is not None and not any(value is form for value in context.values()):
        context["form"] = form
    loose = show_errors(form, refused, on_field) if form is not None and refused else []
    if refused is not None and form is None:
        loose = refused.messages()
    if errors_key is not None:
        context[errors_key] = list(context.get(errors_key) or []) + loose
    response = render(template, fragment, **context)
    response.status_code = INVALID
    return response


class IdsField(SelectMultipleField):
    """Every id posted under the field's name (ticked boxes), the first ``limit`` of them; a value
    no database row can have is left out."""

    def __init__(self, label=None, validators=None, *, limit=None, parse=whole_number, **kwargs):
        super().__init__(label, validators, validate_choice=False, **kwargs)
        self.limit, self.parse = limit, parse

    def process_formdata(self, valuelist):
        self.data = [i for i in map(self.parse, valuelist[: self.limit]) if i]
