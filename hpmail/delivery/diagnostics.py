"""Test-send diagnostics: a real e-mail sent one SMTP step at a time, each with the server's words.

Where a step fails, the diagnosis says what to change in the settings, in the user's language:
the admin reads "choose TLS" rather than "[SSL: WRONG_VERSION_NUMBER]".
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hpmail.core.text import one_line
from hpmail.outbox import dkim
from hpmail.outbox.destinations import (
    USER_TIMEOUT_CAP,
    InternalAddressRefused,
    is_restricted,
    refuse_internal,
    resolve,
)
from hpmail.outbox.models import Security, Transport

log = logging.getLogger(__name__)

STEPS = ("resolve", "connect", "tls", "auth", "mail_from", "rcpt_to", "data")
# Signing in with Microsoft 365 or Google asks the provider for a token first.
OAUTH_STEPS = ("token_endpoint", "token", *STEPS)
STEP_LABELS = {
    "token_endpoint": _l("Sign-in service reached"),
    "token": _l("Access token obtained"),
    "resolve": _l("Name lookup"),
    "connect": _l("Connection"),
    "tls": _l("Encryption (TLS)"),
    "auth": _l("Authentication"),
    "mail_from": _l("Sender (MAIL FROM)"),
    "rcpt_to": _l("Recipient (RCPT TO)"),
    "data": _l("Data (DATA)"),
}


@dataclass
class Step:
    """One step of the conversation: ``status`` is ok, failed, skipped or not_tried."""

    key: str
    status: str
    detail: str = ""
    advice: str = ""

    @property
    def label(self) -> str:
        return str(STEP_LABELS[self.key])


@dataclass
class Diagnosis:
    """The steps of one test-send, in order; ``succeeded`` when the server accepted the e-mail."""

    sender: str
    recipient: str
    host: str
    port: int
    steps: list[Step] = field(default_factory=list)
    planned: tuple[str, ...] = STEPS

    @property
    def succeeded(self) -> bool:
        return bool(self.steps) and self.steps[-1].key == "data" and self.steps[-1].status == "ok"

    @property
    def failed_step(self) -> Step | None:
        return next((step for step in self.steps if step.status == "failed"), None)

    def ok(self, key: str, detail: str = "") -> None:
        self.steps.append(Step(key, "ok", detail))

    def skip(self, key: str, detail: str = "") -> None:
        self.steps.append(Step(key, "skipped", detail))

    def fail(self, key: str, detail: str, advice: str = "") -> Diagnosis:
        self.steps.append(Step(key, "failed", detail, advice))
        done = {step.key for step in self.steps}
        self.steps += [Step(key, "not_tried") for key in self.planned if key not in done]
        return self


class _Failed(Exception):
    """Stop the conversation at ``key`` with the server's words and what to do."""

    def __init__(self, key: str, detail: str, advice: str = ""):
        super().__init__(detail)
        self.key, self.detail, self.advice = key, detail, advice


def _answer(code: int, reply: bytes | str) -> str:
    return f"{code} {one_line(reply)}".strip()


def _tls_context(transport: Transport) -> ssl.SSLContext:
    from hpmail.outbox.smtp import tls_context

    return tls_context(transport)


def _tls_advice(error: ssl.SSLError, transport: Transport) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return _(
            "The server's certificate is not trusted (%(reason)s). If the school uses its own "
            "certificate authority, upload its certificate in “Certificate authority”; otherwise "
            "check the server name, which must match the certificate.",
            reason=error.verify_message or error.reason or str(error),
        )
    if transport.security == Security.TLS:
        return _(
            "The server does not speak TLS as soon as the connection opens. Change “Encryption”: "
            "choose STARTTLS (usually port 587) or None (port 25)."
        )
    return _(
        "The encrypted handshake failed. Change “Encryption”: port 465 uses TLS, port 587 uses "
        "STARTTLS; check that the port and the encryption go together."
    )


def _timeout_advice(transport: Transport) -> str:
    if transport.port == 465 and transport.security != Security.TLS:
        return _(
            "The server did not answer within %(seconds)d s. Port 465 expects TLS from the start: "
            "choose “TLS” as the encryption.",
            seconds=transport.timeout_seconds,
        )
    return _(
        "The server did not answer within %(seconds)d s. Raise the “Timeout (seconds)”; if the "
        "server expects TLS from the start (port 465), choose “TLS” as the encryption.",
        seconds=transport.timeout_seconds,
    )


def build_test_message(
    sender: str, sender_name: str, recipient: str, transport: Transport
) -> bytes:
    """Build the test e-mail (standard library MIME, never hand-made headers), signed with the
    sender's domain's active DKIM keys like every e-mail the worker sends."""
    message = EmailMessage()
    message["Subject"] = _("hpmail: test of e-mail sending")
    message["From"] = Address(display_name=sender_name, addr_spec=sender)
    message["To"] = recipient
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid("hpmail-test", domain=sender.rpartition("@")[2] or None)
    message.set_content(
        _(
            "Hello,\n\nThis e-mail was sent by hpmail to test the SMTP server %(host)s "
            "(port %(port)d). It arrived: sending works.\n",
            host=transport.host,
            port=transport.port,
        )
    )
    # The language it is written in (the admin's page's), and no person wrote it (RFC 3834).
    message["Content-Language"] = str(get_locale())
    message["Auto-Submitted"] = "auto-generated"
    domain = sender.rpartition("@")[2]
    return dkim.sign(message.as_bytes(policy=SMTP), dkim.signing_keys(domain))


def diagnose(
    transport: Transport,
    sender: str,
    recipient: str,
    sender_name: str = "",
    restricted: bool | None = None,
) -> Diagnosis:
    """Send a real test e-mail through ``transport``, one step at a time, and say where it stops.

    ``restricted`` says whether the server must be public; None asks the saved transport's owner
    (a transport not saved yet, being tested before it is saved, has none: the caller says).
    """
    diagnosis = Diagnosis(sender, recipient, transport.host, transport.port)
    smtp: smtplib.SMTP | None = None
    if restricted is None:
        restricted = is_restricted(transport)
    try:
        token = None
        if transport.uses_oauth:
            diagnosis.planned = OAUTH_STEPS
            token = _obtain_token(diagnosis, transport)
        smtp = _converse(diagnosis, transport, sender, sender_name, recipient, restricted, token)
    except _Failed as failure:
        diagnosis.fail(failure.key, failure.detail, failure.advice)
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    log.info(
        "test-send through %s:%s to %s: %s",
        transport.host,
        transport.port,
        recipient,
        "delivered" if diagnosis.succeeded else f"failed at {diagnosis.failed_step.key}",
    )
    return diagnosis


def _obtain_token(diagnosis: Diagnosis, transport: Transport) -> str:
    """Ask the provider for a new access token, saying whether it answered, then what."""
    from hpmail.outbox import oauth

    label = oauth.provider_label(transport.auth)
    try:
        token = oauth.access_token(transport, fresh=True)
    except oauth.EndpointUnreachable as problem:
        raise _Failed(
            "token_endpoint",
            str(problem),
            _(
                "hpmail cannot reach %(provider)s from this server: check that it may make HTTPS "
                "connections (proxy, firewall).",
                provider=label,
            ),
        ) from None
    except oauth.NotConnected as problem:
        raise _Failed("token_endpoint", str(problem)) from None
    except oauth.GrantRefused as problem:
        diagnosis.ok("token_endpoint", label)
        raise _Failed(
            "token",
            f"{problem.error}: {one_line(problem.description)}".strip(": "),
            str(problem),
        ) from None
    diagnosis.ok("token_endpoint", label)
    diagnosis.ok("token", _("for %(account)s", account=transport.oauth_account or "—"))
    return token


def _converse(
    diagnosis, transport, sender, sender_name, recipient, restricted: bool, token=None
) -> smtplib.SMTP | None:
    host, port, timeout = transport.host, transport.port, transport.timeout_seconds
    if restricted:
        timeout = min(timeout, USER_TIMEOUT_CAP)
    step = "resolve"
    try:
        addresses = refuse_internal(host) if restricted else resolve(host)
    except InternalAddressRefused as refused:
        raise _Failed(step, str(refused)) from None
    except (socket.gaierror, UnicodeError) as error:
        raise _Failed(
            step,
            str(error),
            _("The name “%(host)s” is unknown. Check the “SMTP server” field.", host=host),
        ) from None
    diagnosis.ok(step, ", ".join(addresses))

    step = "connect"
    try:
        # The addresses checked above, never a second lookup that could answer differently.
        sock = _connect_any(addresses, port, timeout)
    except ConnectionRefusedError as error:
        raise _Failed(
            step,
            str(error),
            _(
                "Nothing answers on port %(port)d of %(host)s. Check the “SMTP server” and the "
                "“Port” (587 for STARTTLS, 465 for TLS, 25 without encryption).",
                port=port,
                host=host,
            ),
        ) from None
    except TimeoutError:
        raise _Failed(step, _("No answer."), _timeout_advice(transport)) from None
    except OSError as error:
        raise _Failed(
            step, str(error), _("Check the “SMTP server” and the “Port”, and the network.")
        ) from None

    from hpmail.outbox.smtp import helo_name

    smtp = smtplib.SMTP(local_hostname=helo_name(), timeout=timeout)
    smtp._host = host  # what starttls() checks the certificate against
    try:
        context = _tls_context(transport) if transport.security != Security.NONE else None
        tls_detail = ""
        if transport.security == Security.TLS:
            diagnosis.ok("connect", f"{host}:{port}")
            step = "tls"
            sock = context.wrap_socket(sock, server_hostname=host)
            tls_detail = f"{sock.version()}, " + _("certificate verified")
        smtp.sock = sock
        code, reply = smtp.getreply()
        if not 200 <= code <= 599:
            # Not an SMTP reply (an SSH or HTTP banner, say): its words are never shown.
            raise _Failed(
                step,
                _("The service on this port does not speak SMTP."),
                _(
                    "Check the “Port”: 587 for STARTTLS, 465 for TLS, 25 without encryption, "
                    "as your provider indicates."
                ),
            )
        if code != 220:
            raise _Failed(step, _answer(code, reply), _("The server refuses connections for now."))
        greeting = _answer(code, reply)
        smtp.ehlo_or_helo_if_needed()
        if transport.security == Security.TLS:
            diagnosis.ok(step, f"{tls_detail} — {greeting}")
        else:
            diagnosis.ok(step, greeting)
        step = "tls"
        if transport.security == Security.STARTTLS:
            if not smtp.has_extn("starttls"):
                raise _Failed(
                    step,
                    _("The server does not offer STARTTLS."),
                    _(
                        "Change “Encryption”: choose TLS if the port is 465, or None if this "
                        "server does not encrypt."
                    ),
                )
            code, reply = smtp.starttls(context=context)
            smtp.ehlo()
            diagnosis.ok(step, f"{smtp.sock.version()}, {_('certificate verified')} — {code}")
        elif transport.security == Security.NONE:
            detail = _("Not encrypted.")
            if smtp.has_extn("starttls"):
                detail += " " + _("The server offers STARTTLS: choose it to encrypt the e-mails.")
            diagnosis.skip(step, detail)

        step = "auth"
        if token is not None:
            _authenticate_with_token(diagnosis, smtp, transport, token)
        else:
            _authenticate(diagnosis, smtp, transport)

        step = "mail_from"
        code, reply = smtp.mail(sender)
        if code != 250:
            raise _Failed(step, _answer(code, reply), _sender_advice(code, transport, sender))
        diagnosis.ok(step, _answer(code, reply))

        step = "rcpt_to"
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            raise _Failed(
                step,
                _answer(code, reply),
                _(
                    "The server refuses this recipient. Check the address; a server that relays "
                    "only for its own users needs a login and password."
                ),
            )
        diagnosis.ok(step, _answer(code, reply))

        step = "data"
        code, reply = smtp.data(build_test_message(sender, sender_name, recipient, transport))
        if code != 250:
            raise _Failed(step, _answer(code, reply), _data_advice(code))
        diagnosis.ok(step, _answer(code, reply))
        return smtp
    except _Failed:
        _close(smtp, sock)
        raise
    except ssl.SSLError as error:
        _close(smtp, sock)
        raise _Failed("tls", str(error), _tls_advice(error, transport)) from None
    except TimeoutError:
        _close(smtp, sock)
        raise _Failed(step, _("No answer."), _timeout_advice(transport)) from None
    except smtplib.SMTPServerDisconnected as error:
        _close(smtp, sock)
        if isinstance(error.__context__, TimeoutError):  # smtplib wraps a read that timed out
            raise _Failed(step, _("No answer."), _timeout_advice(transport)) from None
        raise _Failed(
            step,
            str(error) or _("Connection closed."),
            _(
                "The server closed the connection. Check that “Encryption” matches the port "
                "(465: TLS, 587: STARTTLS)."
            ),
        ) from None
    except smtplib.SMTPResponseException as error:
        _close(smtp, sock)
        advice = _data_advice(error.smtp_code) if step == "data" else ""
        raise _Failed(step, _answer(error.smtp_code, error.smtp_error), advice) from None
    except (smtplib.SMTPException, OSError) as error:
        _close(smtp, sock)
        raise _Failed(step, str(error)) from None


def _connect_any(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """Open a connection to the first of ``addresses`` that answers (raise the last error)."""
    error: OSError = OSError("no address")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as failure:
            error = failure
    raise error


def _close(smtp: smtplib.SMTP, sock: socket.socket) -> None:
    smtp.close()
    sock.close()


def _authenticate(diagnosis: Diagnosis, smtp: smtplib.SMTP, transport: Transport) -> None:
    if not transport.username:
        diagnosis.skip("auth", _("No login: the e-mail is sent without authentication."))
        return
    if not transport.secret_encrypted:
        raise _Failed("auth", _("No password saved."), _("Type the password and save."))
    from hpmail.outbox.secrets import decrypt_secret

    if not smtp.has_extn("auth"):
        raise _Failed(
            "auth",
            _("The server does not offer authentication on this connection."),
            _(
                "Many servers accept a login only over an encrypted connection: choose STARTTLS "
                "or TLS as the encryption, or empty the “Login” if this server needs none."
            ),
        )
    try:
        code, reply = smtp.login(transport.username, decrypt_secret(transport.secret_encrypted))
    except smtplib.SMTPAuthenticationError as error:
        raise _Failed(
            "auth",
            _answer(error.smtp_code, error.smtp_error),
            _(
                "The server refused the login or the password. Type them again; with Microsoft 365 "
                "SMTP authentication must be enabled for this mailbox, with Gmail use an app "
                "password."
            ),
        ) from None
    diagnosis.ok("auth", _answer(code, reply))


def _authenticate_with_token(
    diagnosis: Diagnosis, smtp: smtplib.SMTP, transport: Transport, token: str
) -> None:
    from hpmail.outbox.smtp import sign_in_with_token

    try:
        code, reply = sign_in_with_token(smtp, transport, token)
    except smtplib.SMTPAuthenticationError as error:
        raise _Failed(
            "auth",
            _answer(error.smtp_code, error.smtp_error),
            _(
                "The SMTP server refused the token (XOAUTH2). With Microsoft 365, “Authenticated "
                "SMTP” must be enabled for this mailbox; check that the login is the mailbox "
                "that signed in, then sign in again."
            ),
        ) from None
    diagnosis.ok("auth", "XOAUTH2 — " + _answer(code, reply))


def _sender_advice(code: int, transport: Transport, sender: str) -> str:
    if code == 530:
        return _(
            "The server wants authentication or encryption first: fill in the “Login” and "
            "“Password”, or choose STARTTLS as the encryption."
        )
    return _(
        "The server refuses the sender address %(sender)s. Use an address that the login "
        "“%(login)s” may send from (the “Sender address”).",
        sender=sender,
        login=transport.username or "—",
    )


def _data_advice(code: int) -> str:
    if 400 <= code < 500:
        return _("The server refuses the e-mail for now; try again in a few minutes.")
    return _("The server refuses the e-mail; its answer above says why.")
