"""Connections to SMTP servers (TLS verified, a timeout on every one) and what their errors mean."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass
from functools import cache

from flask_babel import gettext as _

from hpmail.delivery.destinations import check_destination
from hpmail.delivery.models import Security, Transport
from hpmail.delivery.secrets import decrypt_secret

log = logging.getLogger(__name__)


def tls_context(transport: Transport) -> ssl.SSLContext:
    """Return a verifying TLS context, trusting the school's uploaded CA when one is set."""
    return ssl.create_default_context(cadata=transport.ca_certificates or None)


@cache
def helo_name() -> str:
    """Return the name hpmail gives in EHLO (looked up once: the lookup may be slow)."""
    return socket.getfqdn()


def connect(transport: Transport, timeout: float | None = None) -> smtplib.SMTP:
    """Return an SMTP connection: connected, TLS as configured, logged in, with a timeout."""
    timeout = timeout or transport.timeout_seconds or 30
    check_destination(transport)  # a user's own server: public addresses only
    if transport.security == Security.TLS:
        smtp = smtplib.SMTP_SSL(
            transport.host,
            transport.port,
            local_hostname=helo_name(),
            timeout=timeout,
            context=tls_context(transport),
        )
    else:
        smtp = smtplib.SMTP(
            transport.host, transport.port, local_hostname=helo_name(), timeout=timeout
        )
    try:
        smtp.ehlo()
        if transport.security == Security.STARTTLS:
            smtp.starttls(context=tls_context(transport))
            smtp.ehlo()
        if transport.username:
            password = (
                decrypt_secret(transport.secret_encrypted) if transport.secret_encrypted else ""
            )
            smtp.login(transport.username, password)
    except BaseException:
        close_quietly(smtp)
        raise
    return smtp


def close_quietly(smtp: smtplib.SMTP | None) -> None:
    """Say QUIT and close, ignoring a server that is already gone."""
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@dataclass(frozen=True)
class Failure:
    """What went wrong, in the user's words: transient ones are retried, permanent ones are not."""

    permanent: bool
    message: str
    code: int | None = None
    connection_lost: bool = False


def _server_words(text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())


def server_answer(code: int, text) -> Failure:
    """Classify an SMTP answer: 5xx is permanent, anything else is worth another try."""
    words = _server_words(text)
    if 500 <= code < 600:
        return Failure(
            True, _("Refused by the server (%(code)s): %(text)s", code=code, text=words), code
        )
    return Failure(False, _("Server busy (%(code)s): %(text)s", code=code, text=words), code)


def classify(error: BaseException) -> Failure:
    """Turn an exception of ``connect`` or ``sendmail`` into a ``Failure``."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return Failure(
            True,
            _(
                "The server refused the login or password (%(code)s): %(text)s",
                code=error.smtp_code,
                text=_server_words(error.smtp_error),
            ),
            error.smtp_code,
        )
    if isinstance(error, smtplib.SMTPServerDisconnected):
        if isinstance(error.__context__, TimeoutError):  # smtplib turns a read timeout into this
            return classify(error.__context__)
        return Failure(False, _("The server closed the connection."), connection_lost=True)
    if isinstance(error, smtplib.SMTPSenderRefused):
        return server_answer(error.smtp_code, error.smtp_error)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = list(error.recipients.values())
        code, text = codes[0] if codes else (550, b"")
        return server_answer(code, text)
    if isinstance(error, smtplib.SMTPResponseException):
        return server_answer(error.smtp_code, error.smtp_error)
    if isinstance(error, ssl.SSLCertVerificationError):
        return Failure(
            False,
            _(
                "The server's certificate is not trusted (%(reason)s): check the encryption "
                "setting or the CA file.",
                reason=error.verify_message or error.reason,
            ),
            connection_lost=True,
        )
    if isinstance(error, ssl.SSLError):
        return Failure(
            False,
            _(
                "The TLS handshake failed (%(reason)s): try another encryption setting.",
                reason=error.reason or error,
            ),
            connection_lost=True,
        )
    if isinstance(error, TimeoutError | socket.timeout):
        return Failure(
            False,
            _("Timed out: increase the server's timeout."),
            connection_lost=True,
        )
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return Failure(True, _("The server does not support this: %(text)s", text=error))
    if isinstance(error, socket.gaierror):
        return Failure(False, _("Unknown server name: %(text)s", text=error), connection_lost=True)
    if isinstance(error, ConnectionRefusedError):
        return Failure(
            False, _("Cannot connect to the server (connection refused)."), connection_lost=True
        )
    if isinstance(error, OSError | smtplib.SMTPException):
        return Failure(
            False, _("Cannot reach the server: %(text)s", text=error), connection_lost=True
        )
    if isinstance(error, UnicodeError):
        return Failure(
            True, _("An address has accented or non-Latin characters, which SMTP cannot carry.")
        )
    # Anything else is unexpected: keep the e-mail (retried with the growing delay) and say so.
    log.exception("unexpected delivery error")
    return Failure(False, _("Unexpected error: %(text)s", text=error), connection_lost=True)
