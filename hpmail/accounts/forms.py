"""Forms of the accounts pages. They carry the CSRF token; the rules live in the service."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField


class SchoolAccountForm(FlaskForm):
    label = StringField(_l("Label"))
    address = StringField(_l("E-mail address"))


class CodeForm(FlaskForm):
    code = StringField(_l("Verification code"))


class SecretForm(FlaskForm):
    question = StringField(_l("Secret question"))
    answer = PasswordField(_l("Secret answer"))


class EditAccountForm(SchoolAccountForm):
    current_answer = PasswordField(_l("Secret answer"))


class ChangeSecretForm(FlaskForm):
    current_answer = PasswordField(_l("Current secret answer"))
    question = StringField(_l("New secret question"))
    answer = PasswordField(_l("New secret answer"))


class DeleteAccountForm(FlaskForm):
    current_answer = PasswordField(_l("Secret answer"))


class UnlockForm(FlaskForm):
    current_answer = PasswordField(_l("Secret answer"))


class UnlockCodeForm(FlaskForm):
    code = StringField(_l("Code received at the account's address"))


class PersonalAccountForm(FlaskForm):
    display_name = StringField(_l("Display name"))
    address = StringField(_l("E-mail address"))


class OptionsForm(FlaskForm):
    reply_to = StringField(_l("Reply-to address"))
    hide_recipients = BooleanField(_l("Hide the recipients' addresses (blind copy)"))
