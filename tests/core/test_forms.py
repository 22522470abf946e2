"""One way to refuse input: one exception type, its messages put beside a form's fields."""

from __future__ import annotations

import pytest
from wtforms import Form, StringField

from hpmail.accounts.rules import AccountInvalid
from hpmail.accounts.verification import CodeRefused, SecretRefused
from hpmail.auth.service import UserChangeRefused
from hpmail.compose.saved import TemplateRefused
from hpmail.compose.service import ComposeRefused
from hpmail.core.forms import InputRefused, show_errors
from hpmail.core.text import InvalidHeader
from hpmail.delivery.transports import ProfileInUse, ProfileNameTaken
from hpmail.directory.csv_file import FileRefused


@pytest.mark.parametrize(
    "refusal",
    [
        AccountInvalid,
        CodeRefused,
        SecretRefused,
        UserChangeRefused,
        TemplateRefused,
        ComposeRefused,
        InvalidHeader,
        ProfileInUse,
        ProfileNameTaken,
        FileRefused,
    ],
)
def test_every_refusal_of_input_is_one_exception_type(refusal):
    assert issubclass(refusal, InputRefused)


class AccountForm(Form):
    label = StringField()
    address = StringField()


def test_a_refusal_puts_each_message_beside_its_field_and_gives_back_the_others():
    form = AccountForm()
    refused = InputRefused(
        {"address": "Adresse prise.", "members": ["Aucun membre."]}, general=["Réessayez."]
    )
    loose = show_errors(form, refused)
    assert form.address.errors == ["Adresse prise."]
    assert not form.label.errors
    assert loose == ["Aucun membre.", "Réessayez."]
    assert str(refused) == "Adresse prise. Aucun membre. Réessayez."


def test_a_message_for_no_field_can_be_shown_on_a_field_of_the_form():
    form = AccountForm()
    assert show_errors(form, CodeRefused("Code incorrect."), on_field="label") == []
    assert form.label.errors == ["Code incorrect."]
    taken = UserChangeRefused("Identifiant pris.", "label")
    assert taken.errors == {"label": ["Identifiant pris."]}
