"""Forms of sign-in, of one's own password and of user management."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import (
    AnyOf,
    DataRequired,
    EqualTo,
    Length,
    Optional,
    Regexp,
    StopValidation,
)

from hpmail.auth.models import Role
from hpmail.auth.service import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from hpmail.core.addresses import EmailNotValidError, normalized_address
from hpmail.core.text import header_safe

LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9._@-]+\Z")


def role_choices() -> list[tuple[str, str]]:
    return [
        (Role.ADMIN.value, _l("Administrator")),
        (Role.STAFF.value, _l("Staff member")),
        (Role.TEACHER.value, _l("Teacher")),
    ]


def role_label(role: str) -> str:
    """Return the French (or English) name of a role."""
    return str(dict(role_choices()).get(role, role))


def email_address(form, field) -> None:
    """Check the address syntax (no DNS lookup) and keep its normalised form."""
    if not field.data:
        field.data = None
        return
    try:
        field.data = normalized_address(field.data)
    except EmailNotValidError as error:
        raise StopValidation(_l("This e-mail address is not valid.")) from error


def strip(value):
    return value.strip() if isinstance(value, str) else value


def _new_password_validators(required: bool) -> list:
    first = DataRequired(_l("Enter a password.")) if required else Optional(strip_whitespace=False)
    return [
        first,
        Length(
            min=PASSWORD_MIN_LENGTH,
            max=PASSWORD_MAX_LENGTH,
            message=_l("The password must have between %(min)d and %(max)d characters."),
        ),
    ]


class SignInForm(FlaskForm):
    login = StringField(
        _l("Login"),
        validators=[
            DataRequired(_l("Enter your login.")),
            Length(max=80, message=_l("At most %(max)d characters.")),
        ],
    )
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(_l("Enter your password.")),
            Length(max=PASSWORD_MAX_LENGTH, message=_l("At most %(max)d characters.")),
        ],
    )


class UserDetailsForm(FlaskForm):
    """A user's name, e-mail and role (the login never changes)."""

    display_name = StringField(
        _l("Display name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the name to display.")),
            Length(max=120, message=_l("At most %(max)d characters.")),
            header_safe,
        ],
    )
    email = StringField(
        _l("E-mail address"),
        filters=[strip],
        validators=[
            Length(max=254, message=_l("At most %(max)d characters.")),
            header_safe,
            email_address,
        ],
    )
    role = SelectField(
        _l("Role"),
        choices=role_choices,
        validate_choice=False,
        validators=[AnyOf([r.value for r in Role], message=_l("Choose a role from the list."))],
    )


class NewUserForm(UserDetailsForm):
    login = StringField(
        _l("Login"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a login.")),
            Length(
                min=2,
                max=80,
                message=_l("The login must have between %(min)d and %(max)d characters."),
            ),
            Regexp(
                LOGIN_PATTERN,
                message=_l(
                    "Use only unaccented letters, digits and . _ - @ (no spaces) in the login."
                ),
            ),
        ],
    )
    password = PasswordField(
        _l("Initial password"),
        validators=_new_password_validators(required=False),
        description=_l("Leave empty to generate a provisional password, shown once."),
    )


class ResetPasswordForm(FlaskForm):
    new_password = PasswordField(
        _l("New password"),
        validators=_new_password_validators(required=False),
        description=_l("Leave empty to generate a provisional password, shown once."),
    )


class LinkPersonForm(FlaskForm):
    """The person chosen among the suggestions (radio buttons named ``person_id``)."""

    person_id = HiddenField(_l("Directory person"))

    def validate_person_id(self, field) -> None:
        value = (field.data or "").strip()
        if not value.isdigit() or len(value) > 12:
            raise StopValidation(_l("Choose a person from the suggestions."))
        field.data = int(value)


class LiftSlowdownForm(FlaskForm):
    """The login (empty for every login) and the address whose sign-in failures are forgotten."""

    login = HiddenField(validators=[Length(max=80)])
    address = HiddenField(validators=[DataRequired(), Length(max=64)])


class OwnPasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[
            DataRequired(_l("Enter your current password.")),
            Length(max=PASSWORD_MAX_LENGTH, message=_l("At most %(max)d characters.")),
        ],
    )
    new_password = PasswordField(
        _l("New password"),
        validators=_new_password_validators(required=True),
        description=_l("At least %(min)d characters.", min=PASSWORD_MIN_LENGTH),
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[
            DataRequired(_l("Type the new password again.")),
            EqualTo("new_password", message=_l("The two new passwords differ.")),
        ],
    )
