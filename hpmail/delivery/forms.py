"""Forms of the delivery pages: server settings, profiles, personal SMTP, test-send, outbox."""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from hpmail.core.addresses import EmailNotValidError, normalized_address
from hpmail.core.forms import IdsField
from hpmail.core.text import header_safe
from hpmail.core.web import MAX_PAGE, whole_number
from hpmail.delivery.outbox_admin import LISTED_STATES
from hpmail.delivery.transports import ApplicationValues, SenderValues, TransportValues
from hpmail.outbox.destinations import (
    USER_TIMEOUT_CAP,
    InternalAddressRefused,
    refuse_internal,
)
from hpmail.outbox.models import Auth, Security

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}\.?$", re.IGNORECASE)
DOMAIN = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)+{_LABEL}$", re.IGNORECASE)
MAX_DOMAINS = 200
MAX_IDS_PER_POST = 1000  # the outbox page never posts more ids than this
TIMEOUT_CAP = 600  # seconds, for the school's servers (a user's own: USER_TIMEOUT_CAP)


@dataclass(frozen=True)
class LimitPreset:
    """Sending limits a big provider sets, with the name the admin picks them by."""

    label: str
    per_minute: int | None
    per_day: int | None

    @property
    def limits(self) -> tuple[int | None, int | None]:
        return self.per_minute, self.per_day


# The one list of presets: the menu, its check, and static/app.js (data-limit-presets) read it.
LIMIT_PRESETS = {
    "none": LimitPreset(_l("No limit"), None, None),
    "microsoft365": LimitPreset(
        _l("Microsoft 365 (30 a minute, 10,000 recipients a day)"), 30, 10_000
    ),
    "gmail": LimitPreset(_l("Gmail / Google Workspace (2,000 a day)"), None, 2_000),
}


class WholeNumberField(IntegerField):
    """An integer field whose "not a number" message is ours (translated by Flask-Babel)."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = int(valuelist[0].strip())
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a whole number.")) from None


def host_name(form, field) -> None:
    """Accept a host name or an IP address."""
    value = (field.data or "").strip()
    field.data = value
    if not value:
        return
    try:
        ipaddress.ip_address(value.strip("[]"))
        return
    except ValueError:
        pass
    try:
        ascii_name = value.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    if not HOSTNAME.match(ascii_name) or len(ascii_name) > 253:
        raise ValidationError(_l("Enter a server name such as smtp.example.fr, or an IP address."))


def email_address(form, field) -> None:
    """Accept an e-mail address (syntax only, no DNS lookup)."""
    value = (field.data or "").strip()
    field.data = value
    if not value:
        return
    try:
        field.data = normalized_address(value)
    except EmailNotValidError:
        raise ValidationError(
            _l("Enter a valid e-mail address, such as name@example.fr.")
        ) from None


MAX_CA_BYTES = 256 * 1024


def pem_certificates(form, field) -> None:
    """Accept an uploaded PEM file holding at least one certificate; keep its text in ``pem``."""
    field.pem = None
    upload = field.data
    if not upload or not getattr(upload, "filename", ""):
        return
    content = upload.read(MAX_CA_BYTES + 1)
    if len(content) > MAX_CA_BYTES:
        raise ValidationError(_l("This file is too large for a certificate."))
    try:
        text = content.decode("ascii")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError
        ssl.create_default_context(cadata=text)
    except (UnicodeError, ssl.SSLError, ValueError):
        raise ValidationError(_l("This file does not hold a certificate in PEM format.")) from None
    field.pem = text


def allowed_domain_lines(form, field) -> None:
    """Check each line of the allowed domains and keep them tidy (lower case, no blank lines)."""
    lines = [line.strip().lower() for line in (field.data or "").splitlines() if line.strip()]
    if len(lines) > MAX_DOMAINS:
        raise ValidationError(_l("At most %(count)d domains.", count=MAX_DOMAINS))
    for line in lines:
        try:
            ascii_line = (
                line.encode("idna").decode("ascii")
                if not line.startswith("*.")
                else ("*." + line[2:].encode("idna").decode("ascii"))
            )
        except UnicodeError:
            ascii_line = ""
        if not DOMAIN.match(ascii_line) or len(ascii_line) > 253:
            raise ValidationError(
                _l(
                    "“%(line)s” is not a domain. Write one domain per line, such as "
                    "lycee-exemple.fr, or *.univ-exemple.fr for its subdomains.",
                    line=line[:80],
                )
            )
    field.data = "\n".join(dict.fromkeys(lines))


# How each encryption is named, in the menu and in the pages that show a saved server.
SECURITY_LABELS = {
    Security.NONE.value: _l("None"),
    Security.STARTTLS.value: _l("STARTTLS"),
    Security.TLS.value: _l("TLS"),
}
SECURITY_CHOICES = [SelectChoice(value, label) for value, label in SECURITY_LABELS.items()]

# How each way of signing in is named, in the menu and in the pages that show a saved server.
AUTH_LABELS = {
    Auth.NONE.value: _l("None"),
    Auth.PASSWORD.value: _l("Password"),
    Auth.MICROSOFT.value: _l("Microsoft 365"),
    Auth.GOOGLE.value: _l("Google"),
}
AUTH_CHOICES = [SelectChoice(value, label) for value, label in AUTH_LABELS.items()]


def timeout_field(cap: int) -> WholeNumberField:
    """Return the SMTP timeout field, from 1 to ``cap`` seconds (the browser is told the cap)."""
    return WholeNumberField(
        _l("Timeout (seconds)"),
        default=30,
        validators=[
            InputRequired(_l("Enter the timeout in seconds.")),
            NumberRange(
                1, cap, message=_l("The timeout is a number of seconds from 1 to %(max)d.")
            ),
        ],
        render_kw={"min": 1, "max": cap},
    )


class TransportForm(FlaskForm):
    """The fields of an SMTP server, shared by the server settings, profiles and personal SMTP."""

    host = StringField(
        _l("SMTP server"),
        validators=[
            DataRequired(_l("Enter the name of the SMTP server.")),
            Length(max=253, message=_l("At most %(max)d characters.")),
            header_safe,
            host_name,
        ],
    )
    port = WholeNumberField(
        _l("Port"),
        default=587,
        validators=[
            InputRequired(_l("Enter the port (587 for STARTTLS, 465 for TLS, 25 without).")),
            NumberRange(1, 65535, message=_l("The port is a number from 1 to 65535.")),
        ],
    )
    security = SelectField(
        _l("Encryption"),
        choices=SECURITY_CHOICES,
        default=Security.STARTTLS.value,
        validate_choice=False,
    )
    auth = SelectField(
        _l("Authentication"),
        choices=AUTH_CHOICES,
        default=Auth.PASSWORD.value,
        validate_choice=False,
        render_kw={"data-auth-choice": ""},  # static/app.js: the password only with "password"
        description=_l(
            "With Microsoft 365 or Google, save, then click « Se connecter »: the login is the "
            "mailbox's address and no password is kept."
        ),
    )
    username = StringField(
        _l("Login"),
        validators=[Length(max=254, message=_l("At most %(max)d characters.")), header_safe],
    )
    password = PasswordField(
        _l("Password"),
        validators=[Length(max=500, message=_l("At most %(max)d characters.")), header_safe],
    )
    forget_password = BooleanField(_l("Remove the saved password"))
    timeout_seconds = timeout_field(TIMEOUT_CAP)
    limit_preset = SelectField(
        _l("Sending limits"),
        choices=[SelectChoice("custom", _l("As typed below"))]
        + [SelectChoice(name, preset.label) for name, preset in LIMIT_PRESETS.items()],
        default="custom",
        validate_choice=False,
        description=_l("A preset replaces the limits typed below."),
        # static/app.js fills the two limits from this when a preset is chosen
        render_kw={
            "data-limit-presets": json.dumps(
                {
                    name: ["" if n is None else str(n) for n in preset.limits]
                    for name, preset in LIMIT_PRESETS.items()
                }
            )
        },
    )
    per_minute = WholeNumberField(
        _l("Limit per minute"),
        validators=[
            Optional(),
            NumberRange(1, 100_000, message=_l("Leave empty for no limit, or a number from 1.")),
        ],
    )
    per_day = WholeNumberField(
        _l("Limit per day"),
        validators=[
            Optional(),
            NumberRange(1, 10_000_000, message=_l("Leave empty for no limit, or a number from 1.")),
        ],
    )
    ca_certificates = FileField(
        _l("Certificate authority (optional)"),
        validators=[pem_certificates],
        description=_l(
            "Only if the SMTP server's certificate comes from the school's own authority: "
            "upload its certificate (PEM file, .pem or .crt)."
        ),
    )
    forget_ca_certificates = BooleanField(_l("Remove the saved certificate authority"))
    # Set by "Use these settings" (static/app.js) to the address the settings were found for:
    # such settings are saved only once a test e-mail went through them.
    discovered_for = HiddenField(
        validators=[Length(max=254, message=_l("At most %(max)d characters.")), header_safe]
    )

    def validate_discovered_for(self, field) -> None:
        email_address(self, field)

    def validate_security(self, field) -> None:
        if field.data not in {choice.value for choice in SECURITY_CHOICES}:
            raise ValidationError(_l("Choose an encryption in the list."))

    def validate_auth(self, field) -> None:
        if field.data not in AUTH_LABELS:
            raise ValidationError(_l("Choose an authentication in the list."))

    def validate_limit_preset(self, field) -> None:
        if field.data != "custom" and field.data not in LIMIT_PRESETS:
            raise ValidationError(_l("Choose a preset in the list."))

    def show_transport(self, transport) -> None:
        """Fill the fields from a saved transport (the password is never sent back)."""
        if transport is None:
            return
        for name in ("host", "port", "security", "auth", "username", "timeout_seconds"):
            getattr(self, name).data = getattr(transport, name)
        self.per_minute.data, self.per_day.data = transport.per_minute, transport.per_day
        limits = (transport.per_minute, transport.per_day)
        self.limit_preset.data = next(
            (
                name
                for name, preset in LIMIT_PRESETS.items()
                if preset.limits == limits and name != "none"
            ),
            "custom",
        )

    def show_saved_password(self, transport) -> None:
        """Say that a password or a CA is saved, without ever sending the password back."""
        if transport is not None and transport.secret_encrypted:
            self.password.render_kw = {"placeholder": _l("••• saved")}
            self.password.description = _l("Leave empty to keep the saved password.")
        if transport is not None and transport.ca_certificates:
            self.ca_certificates.saved = True
            self.ca_certificates.description = _l(
                "A certificate authority is saved; upload a file only to replace it."
            )

    def transport_values(self) -> TransportValues:
        """Return what the admin or user typed, as plain values for the service functions."""
        per_minute, per_day = self.per_minute.data, self.per_day.data
        if self.limit_preset.data in LIMIT_PRESETS:
            per_minute, per_day = LIMIT_PRESETS[self.limit_preset.data].limits
        return TransportValues(
            host=self.host.data,
            port=self.port.data,
            security=self.security.data,
            username=(self.username.data or "").strip(),
            password=self.password.data or None,
            forget_password=bool(self.forget_password.data),
            timeout_seconds=self.timeout_seconds.data,
            per_minute=per_minute,
            per_day=per_day,
            ca_certificates=getattr(self.ca_certificates, "pem", None),
            forget_ca_certificates=bool(self.forget_ca_certificates.data),
            auth=self.auth.data,
        )


class PersonalTransportForm(TransportForm):
    """A user's own SMTP server: a public host (unless the admin allows others), a short timeout.

    ``public_only`` is set by the view for the users whose server must not be internal.
    """

    public_only = False

    timeout_seconds = timeout_field(USER_TIMEOUT_CAP)

    def validate_host(self, field) -> None:
        if not self.public_only or field.errors or not field.data:
            return
        try:
            refuse_internal(field.data)
        except InternalAddressRefused as refused:
            raise ValidationError(str(refused)) from None
        except (OSError, UnicodeError):
            pass  # an unknown name: the test-send says so, and every connection checks again


class ServerSettingsForm(TransportForm):
    """Serveur › Paramètres d'envoi des e-mails."""

    delegate = BooleanField(_l("Delegate the sending of all e-mails to the server"))
    sender_name = StringField(
        _l("Sender name"),
        validators=[
            DataRequired(_l("Enter the sender name, such as the school's name.")),
            Length(max=120, message=_l("At most %(max)d characters.")),
            header_safe,
        ],
        description=_l("Used when a user's address is outside the allowed domains."),
    )
    sender_address = StringField(
        _l("Sender address"),
        validators=[
            DataRequired(_l("Enter the sender address.")),
            Length(max=254, message=_l("At most %(max)d characters.")),
            header_safe,
            email_address,
        ],
    )
    allowed_domains = TextAreaField(
        _l("Allowed domains"),
        validators=[
            Length(max=20_000, message=_l("At most %(max)d characters.")),
            allowed_domain_lines,
        ],
        description=_l(
            "One domain per line; *.univ-exemple.fr means its subdomains. An address in these "
            "domains sends as itself; any other goes out through the sender address above."
        ),
    )
    require_personal_verification = BooleanField(
        _l("Require the verification of personal accounts")
    )
    allow_internal_hosts = BooleanField(
        _l("Allow internal addresses for the users' own servers"),
        description=_l(
            "Off (advised), a user's own SMTP server may not be a local, private or reserved "
            "address such as 127.0.0.1, 10.0.0.1 or 169.254.169.254; the sending profiles and "
            "the server above may."
        ),
    )

    def sender_values(self) -> SenderValues:
        """Return the server-wide choices as plain values."""
        return SenderValues(
            delegate=bool(self.delegate.data),
            sender_name=self.sender_name.data.strip(),
            sender_address=self.sender_address.data,
            allowed_domains=self.allowed_domains.data or "",
            require_personal_verification=bool(self.require_personal_verification.data),
            allow_internal_hosts=bool(self.allow_internal_hosts.data),
        )


class ApplicationsForm(FlaskForm):
    """The school's OAuth2 applications (Serveur › Paramètres d'envoi des e-mails).

    The secrets are never sent back: an empty field keeps the saved one.
    """

    microsoft_tenant = StringField(
        _l("Microsoft 365 tenant (directory) ID"),
        validators=[Length(max=120, message=_l("At most %(max)d characters.")), header_safe],
        description=_l("The directory's ID or domain, such as lycee-exemple.fr."),
    )
    microsoft_client_id = StringField(
        _l("Microsoft 365 application (client) ID"),
        validators=[Length(max=200, message=_l("At most %(max)d characters.")), header_safe],
    )
    microsoft_client_secret = PasswordField(
        _l("Microsoft 365 client secret"),
        validators=[Length(max=500, message=_l("At most %(max)d characters.")), header_safe],
    )
    google_client_id = StringField(
        _l("Google client ID"),
        validators=[Length(max=200, message=_l("At most %(max)d characters.")), header_safe],
    )
    google_client_secret = PasswordField(
        _l("Google client secret"),
        validators=[Length(max=500, message=_l("At most %(max)d characters.")), header_safe],
    )

    def show_saved(self, applications: dict) -> None:
        """Fill the ids from the saved applications; say which secrets are saved."""
        for name, row in applications.items():
            if row is None:
                continue
            if name == "microsoft":
                self.microsoft_tenant.data = self.microsoft_tenant.data or row.tenant
            client_id = getattr(self, f"{name}_client_id")
            client_id.data = client_id.data or row.client_id
            if row.client_secret_encrypted:
                secret = getattr(self, f"{name}_client_secret")
                secret.render_kw = {"placeholder": _l("••• saved")}
                secret.description = _l("Leave empty to keep the saved secret.")

    def validate_microsoft_client_id(self, field) -> None:
        if field.data and not (self.microsoft_tenant.data or "").strip():
            raise ValidationError(_l("Enter the tenant ID too."))

    def application_values(self) -> list[ApplicationValues]:
        return [
            ApplicationValues(
                "microsoft",
                (self.microsoft_tenant.data or "").strip(),
                (self.microsoft_client_id.data or "").strip(),
                self.microsoft_client_secret.data or None,
            ),
            ApplicationValues(
                "google",
                "",
                (self.google_client_id.data or "").strip(),
                self.google_client_secret.data or None,
            ),
        ]


class ProfileForm(TransportForm):
    """A named sending profile (Configuration › Gérer les profils d'envoi d'e-mails)."""

    name = StringField(
        _l("Name"),
        validators=[
            DataRequired(_l("Enter a name for this profile.")),
            Length(max=120, message=_l("At most %(max)d characters.")),
            header_safe,
        ],
    )


class ChooseProfileForm(FlaskForm):
    """Récupérer un profil d'envoi d'e-mails."""

    profile_id = SelectField(_l("Sending profile"), coerce=int, validate_choice=False)

    def validate_profile_id(self, field) -> None:
        if field.data not in {choice.value for choice in field.choices}:
            raise ValidationError(_l("Choose a profile in the list."))


class TestSendForm(FlaskForm):
    """The address that receives the test e-mail, when the user has none on file."""

    recipient = StringField(
        _l("Send the test e-mail to"),
        validators=[
            Length(max=254, message=_l("At most %(max)d characters.")),
            header_safe,
            email_address,
        ],
    )


class PersonalActionForm(FlaskForm):
    """Which of the two forms of Configuration › Paramétrer l'envoi d'e-mails was posted."""

    action = SelectField(
        choices=[SelectChoice("profile", _l("Use this profile")), SelectChoice("own", _l("Save"))],
        validate_choice=False,
    )

    def validate_action(self, field) -> None:
        if field.data not in ("profile", "own"):
            raise ValidationError(_l("Unknown action."))


class OutboxActionForm(FlaskForm):
    """Renvoyer maintenant / Annuler on the e-mails ticked in the outbox, and the list to return to.

    ``email_id`` keeps only values a row can have: ids that are not numbers leave nothing ticked.
    """

    action = SelectField(
        choices=[SelectChoice("retry", _l("Retry now")), SelectChoice("cancel", _l("Cancel"))],
        validate_choice=False,
    )
    email_id = IdsField(limit=MAX_IDS_PER_POST)
    etat = StringField(filters=[lambda value: value or ""])
    page = StringField()

    def validate_action(self, field) -> None:
        if field.data not in ("retry", "cancel"):
            raise ValidationError(_l("Unknown action."))

    def validate_email_id(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Tick at least one e-mail."))

    def validate_etat(self, field) -> None:
        if field.data and field.data not in LISTED_STATES:
            raise ValidationError(_l("Unknown state."))

    def validate_page(self, field) -> None:
        number = whole_number(field.data, minimum=1, maximum=MAX_PAGE)
        if field.data and number is None:
            raise ValidationError(_l("Unknown page."))
        field.data = number


# --- Serveur › Paramètres d'envoi › Domaines autorisés › Signature DKIM ------------------------

DKIM_ALGORITHMS = {
    "rsa": _l("RSA 2048 bits (read by every receiver)"),
    "ed25519": _l("Ed25519 (in addition to an RSA key)"),
}
DKIM_ACTIONS = ("generate", "check", "activate", "retire", "delete")


def dkim_selector(form, field) -> None:
    """Accept a DKIM selector: DNS labels of letters, digits and hyphens, dots between them.

    Kept lower-case; ASCII only (a case-insensitive ``[a-z]`` would also take the long s « ſ »).
    """
    value = (field.data or "").strip().lower()
    field.data = value
    if value and not (value.isascii() and HOSTNAME.fullmatch(value) and value[-1] != "."):
        raise ValidationError(
            _l(
                "A selector is made of letters without accents, digits and hyphens, with dots "
                "between its parts (at most 63 characters each), such as hpmail2026."
            )
        )


class DkimKeyForm(FlaskForm):
    """A new DKIM key: its selector (chosen by the admin) and its algorithm."""

    selector = StringField(
        _l("Selector"),
        validators=[
            DataRequired(_l("Enter a selector, such as hpmail2026.")),
            Length(max=63, message=_l("At most %(max)d characters.")),
            header_safe,
            dkim_selector,
        ],
        description=_l(
            "The name of the key in the DNS, chosen by you: the date it was made, such as "
            "hpmail2026, tells keys apart at the next rotation."
        ),
    )
    algorithm = SelectField(
        _l("Algorithm"),
        choices=[SelectChoice(value, label) for value, label in DKIM_ALGORITHMS.items()],
        default="rsa",
        validate_choice=False,
    )

    def validate_algorithm(self, field) -> None:
        if field.data not in DKIM_ALGORITHMS:
            raise ValidationError(_l("Choose RSA or Ed25519."))


class DkimActionForm(FlaskForm):
    """What a button of the DKIM page asks: generate, or an action on one key.

    ``version`` is the key's state as the page showed it (``dkim_keys.version``): a button
    replayed after the key changed does nothing.
    """

    action = StringField()
    key_id = StringField()
    version = StringField(validators=[Length(max=60)])

    def validate_action(self, field) -> None:
        if field.data not in DKIM_ACTIONS:
            raise ValidationError(_l("Unknown action."))

    def validate_key_id(self, field) -> None:
        number = whole_number(field.data, minimum=1)
        if self.action.data != "generate" and number is None:
            raise ValidationError(_l("Unknown key."))
        field.data = number
