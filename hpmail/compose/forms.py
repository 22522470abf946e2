"""Forms of the composer: the draft (sent, saved as a template, or with a new signature), the
template's new name, and the scanned signature. They read the request into clean values; the
rules on what an e-mail may hold live in ``compose.service``."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from wtforms import (
    BooleanField,
    HiddenField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)

from hpmail.compose import service
from hpmail.core.forms import IdsField
from hpmail.core.web import whole_number

# Bounds of what a draft's fields keep: far above any real e-mail, below what would hurt the server.
ADDRESSES_MAX = 5000
BODY_MAX = 2_000_000


def _cut(limit: int):
    def cut(value):
        return value[:limit] if isinstance(value, str) else value

    return cut


class ValuesField(SelectMultipleField):
    """Every value posted under the field's name (ticked boxes), as text, in order."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, validate_choice=False, **kwargs)

    def process_formdata(self, valuelist):
        self.data = [str(value) for value in valuelist]


class AccountField(HiddenField):
    """The account to send as: None when not chosen; an id no account can have is 0, refused like
    an account the user may not use."""

    def process_formdata(self, valuelist):
        raw = valuelist[0] if valuelist else ""
        self.data = (whole_number(raw) or 0) if raw else None


class DraftForm(FlaskForm):
    """The composer's form, as sent, saved as a template, or posted with a new signature."""

    selection = HiddenField()
    kinds = ValuesField()
    other_ids = IdsField()
    cc = StringField(filters=[_cut(ADDRESSES_MAX)])
    bcc = StringField(filters=[_cut(ADDRESSES_MAX)])
    subject = StringField()
    body = TextAreaField(filters=[_cut(BODY_MAX)])
    insert_signature = BooleanField()
    account_id = AccountField()
    hide_recipients = BooleanField()
    one_per_recipient = BooleanField()
    # Only the "Send without a subject" button sends it, with the value 1.
    confirm_empty_subject = BooleanField(false_values=("", "false", "0"))
    kind = HiddenField(filters=[lambda value: "quick" if value == "quick" else "email"])
    request_token = HiddenField(filters=[service.request_token])
    about = HiddenField(filters=[service.about_text])
    attachments = MultipleFileField()
    kept = ValuesField()
    template_label = StringField()
    signature = FileField()

    def draft(self) -> service.Draft:
        """Return what the user wrote, as the plain values the service works on."""
        return service.Draft(
            kinds=self.kinds.data,
            other_ids=self.other_ids.data,
            cc=self.cc.data or "",
            bcc=self.bcc.data or "",
            subject=self.subject.data or "",
            body=self.body.data or "",
            insert_signature=self.insert_signature.data,
            account_id=self.account_id.data,
            hide_recipients=self.hide_recipients.data,
            one_per_recipient=self.one_per_recipient.data,
            confirm_empty_subject=self.confirm_empty_subject.data,
            kind=self.kind.data,
            request_token=self.request_token.data,
            about=self.about.data,
        )

    def uploads(self) -> list:
        """Return the files picked in the form (not the signature), as the browser sent them."""
        return list(self.attachments.data or [])


class TemplateNameForm(FlaskForm):
    """A template's new name, and the selection to come back to."""

    label = StringField()
    selection = HiddenField()


class SignatureForm(FlaskForm):
    """The scanned signature page: a new image, or its removal (``action=delete``)."""

    signature = FileField()
    action = HiddenField()
