"""Forms of the accounts pages. They carry the CSRF token; the rules live in the service."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField

from hpmail.core.web import whole_number


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


class ChooseAccountForm(FlaskForm):
    """The account the user sends from (radio buttons); an id no row can have is None."""

    account_id = HiddenField(filters=[whole_number])


class TickedField(BooleanField):
    """A checkbox sent by htmx: ticked only when its value is 1, on or true."""

    def process_formdata(self, valuelist):
        self.data = bool(valuelist) and valuelist[0] in ("1", "on", "true")


class MemberForm(FlaskForm):
    """One user ticked or unticked in an account's checklist."""

    authorised = TickedField()


class ConfirmForm(FlaskForm):
    """The "Yes" of a question (``confirm=yes``); anything else leaves things as they are."""

    confirm = HiddenField()

    @property
    def confirmed(self) -> bool:
        return self.confirm.data == "yes"
