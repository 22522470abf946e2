"""SMTP connections (TLS verified, a deadline on every exchange, commands pipelined where the
server allows) and what their errors mean."""

from __future__ import annotations

import io
import logging
import re
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from functools import cache

from flask_babel import gettext as _

from hpmail.core.text import fold, one_line
from hpmail.outbox import oauth
from hpmail.outbox.destinations import InternalAddressRefused, check_destination
from hpmail.outbox.models import Auth, Security, Transport
from hpmail.outbox.secrets import decrypt_secret

log = logging.getLogger(__name__)


def tls_context(transport: Transport) -> ssl.SSLContext:
    """Return a verifying TLS context, trusting the school's uploaded CA when one is set."""
    return ssl.create_default_context(cadata=transport.ca_certificates or None)


@cache
def helo_name() -> str:
    """Return the name hpmail gives in EHLO (looked up once: the lookup may be slow)."""
    return socket.getfqdn()


# The slowest link a message is given time for: its deadline is the timeout plus its size at
# this rate (a 10 MB message may take the timeout and 500 s more).
SLOWEST_BYTES_PER_SECOND = 20_000


class _DeadlineReader(io.RawIOBase):
    """The connection's socket as smtplib reads it: each read waits only for the time left."""

    def __init__(self, smtp: _Deadline) -> None:
        self.smtp = smtp

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        sock = self.smtp.sock
        sock.settimeout(self.smtp.time_left())
        return sock.recv_into(buffer)


class _Deadline:
    """A deadline for each whole exchange with the server, not for each socket operation.

    smtplib's timeout bounds every read alone, so a server sending one byte at a time could hold
    a worker for as long as it likes. Here each read and write waits only for what is left of
    the deadline: connecting, the greeting, EHLO, STARTTLS and AUTH share the timeout; each
    message gets the timeout plus its size at ``SLOWEST_BYTES_PER_SECOND``; RSET and QUIT the
    timeout. Past it, ``TimeoutError``: the e-mails are deferred like after any timeout.
    """

    def __init__(self, *args, timeout: float, addresses: list[str] | None = None, **kwargs):
        self.deadline = time.monotonic() + timeout  # before connecting: the greeting counts
        self.addresses = addresses
        super().__init__(*args, timeout=timeout, **kwargs)

    def allow(self, seconds: float) -> None:
        """Start an exchange that must end within ``seconds``."""
        self.deadline = time.monotonic() + seconds

    def time_left(self) -> float:
        """Return the seconds left before the deadline; raise ``TimeoutError`` when none is."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the SMTP server did not answer in time")
        return left

    def _get_socket(self, host, port, timeout):
        # The TLS handshake of SMTP_SSL runs here, bounded as one operation by this timeout.
        # A checked address is used as it was checked; TLS still verifies the host's name.
        if self.addresses:
            host = self.addresses[0]
        return super()._get_socket(host, port, min(timeout, self.time_left()))

    def send(self, s) -> None:
        if self.sock is not None:
            self.sock.settimeout(self.time_left())  # sendall: the timeout bounds the whole send
        super().send(s)

    def getreply(self):
        if self.file is None and self.sock is not None:
            self.file = io.BufferedReader(_DeadlineReader(self))
        return super().getreply()

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        """Send one message as smtplib does, its commands pipelined when the server allows.

        The same answers and exceptions as ``smtplib.SMTP.sendmail``, with one difference: when
        a 421 (the server is closing) cuts the recipients short, the recipients it did not answer
        are refused with that 421 too, so that they wait for the next try with the others
        instead of looking refused for good.
        """
        self.allow(self.timeout + len(msg) / SLOWEST_BYTES_PER_SECOND)
        to_addrs = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
        try:
            simple = isinstance(msg, bytes) and not (mail_options or rcpt_options)
            if simple and self.pipelining():
                return self._send_pipelined(from_addr, to_addrs, msg)
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        except smtplib.SMTPRecipientsRefused as error:
            closing = [answer for answer in error.recipients.values() if answer[0] == 421]
            for address in to_addrs if closing else ():
                error.recipients.setdefault(address, closing[0])
            raise

    def pipelining(self) -> bool:
        """Tell whether the server takes MAIL, RCPT and DATA in one go (RFC 2920)."""
        self.ehlo_or_helo_if_needed()
        return bool(self.has_extn("pipelining"))

    def _send_pipelined(self, from_addr: str, to_addrs: list[str], msg: bytes) -> dict:
        """Send MAIL, every RCPT and DATA in one write, read their answers, then the message.

        ``smtplib`` waits for the answer of each command before the next: three round trips and
        one more per recipient for each e-mail, where a pipelining server (Postfix, Exchange, Gmail,
        Microsoft 365 all are) needs two. Over a link with some latency that halves the time an
        e-mail takes; on loopback it halves the system calls and wake-ups. The message itself
        goes only after the 354 to DATA, as RFC 2920 requires, and only if a recipient was
        accepted; a server answering 354 all the same gets the lone dot that ends an empty message.
        """
        size = f" SIZE={len(msg)}" if self.has_extn("size") else ""
        commands = [f"MAIL FROM:<{from_addr}>{size}"]
        commands += [f"RCPT TO:<{address}>" for address in to_addrs]
        commands.append("DATA")
        if any("\r" in command or "\n" in command for command in commands):
            raise ValueError("command and arguments contain prohibited newline characters")
        self.send("".join(f"{command}\r\n" for command in commands))
        mail = self.getreply()
        if mail[0] == 421:
            self.close()
            raise smtplib.SMTPSenderRefused(*mail, from_addr)
        refused = {}
        for address in to_addrs:
            answer = self.getreply()
            if answer[0] == 421:
                self.close()
                if mail[0] != 250:
                    raise smtplib.SMTPSenderRefused(*mail, from_addr)
                refused[address] = answer
                raise smtplib.SMTPRecipientsRefused(refused)
            if answer[0] not in (250, 251):
                refused[address] = answer
        data = self.getreply()
        if mail[0] != 250 or len(refused) == len(to_addrs):
            if data[0] == 354:
                self.send(b".\r\n")
                self.getreply()
            self._rset()  # smtplib's: RSET, a server already gone ignored
            if mail[0] != 250:
                raise smtplib.SMTPSenderRefused(*mail, from_addr)
            raise smtplib.SMTPRecipientsRefused(refused)
        if data[0] == 354:
            content = smtplib._quote_periods(msg)  # RFC 5321 4.5.2, smtplib's own quoting
            if not content.endswith(b"\r\n"):
                content += b"\r\n"
            self.send(content + b".\r\n")
            data = self.getreply()
        if data[0] != 250:
            if data[0] == 421:
                self.close()
            else:
                self._rset()  # smtplib's: RSET, a server already gone ignored
            raise smtplib.SMTPDataError(*data)
        return refused

    def rset(self):
        self.allow(self.timeout)
        return super().rset()

    def quit(self):
        self.allow(self.timeout)
        return super().quit()


class DeadlineSMTP(_Deadline, smtplib.SMTP):
    """``smtplib.SMTP`` with a deadline for each exchange."""


class DeadlineSMTP_SSL(_Deadline, smtplib.SMTP_SSL):  # noqa: N801 - named after smtplib's
    """``smtplib.SMTP_SSL`` with a deadline for each exchange."""


def connect(transport: Transport, timeout: float | None = None) -> smtplib.SMTP:
    """Return an SMTP connection: connected, TLS as configured, logged in, within ``timeout``."""
    timeout = timeout or transport.timeout_seconds or 30
    addresses = check_destination(transport)  # a user's own server: public addresses only
    # The token first: a provider that refuses needs no SMTP connection to be told so.
    token = oauth.access_token(transport) if transport.uses_oauth else None
    if transport.security == Security.TLS:
        smtp = DeadlineSMTP_SSL(
            transport.host,
            transport.port,
            local_hostname=helo_name(),
            timeout=timeout,
            addresses=addresses,
            context=tls_context(transport),
        )
    else:
        smtp = DeadlineSMTP(
            transport.host,
            transport.port,
            local_hostname=helo_name(),
            timeout=timeout,
            addresses=addresses,
        )
    try:
        smtp.ehlo()
        if transport.security == Security.STARTTLS:
            smtp.starttls(context=tls_context(transport))
            smtp.ehlo()
        if token is not None:
            sign_in_with_token(smtp, transport, token)
        elif transport.auth != Auth.NONE and transport.username:
            password = (
                decrypt_secret(transport.secret_encrypted) if transport.secret_encrypted else ""
            )
            smtp.login(transport.username, password)
    except BaseException:
        close_quietly(smtp)
        raise
    return smtp


def sign_in_with_token(smtp: smtplib.SMTP, transport: Transport, token: str) -> tuple[int, bytes]:
    """Authenticate with SASL XOAUTH2 (``AUTH XOAUTH2`` and the token in one line).

    A refused token is forgotten, so that the next connection asks the provider for a new one.
    """
    account = transport.oauth_account or transport.username

    def answer(challenge=None) -> str:
        # After a refusal the server sends its reasons as a challenge: an empty line ends it.
        return oauth.xoauth2(account, token) if challenge is None else ""

    try:
        return smtp.auth("XOAUTH2", answer, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError:
        oauth.forget(transport)
        raise


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
    # The server's failure, not the e-mail's (``server_failing``): the transport's state.
    server: bool = False


def server_answer(code: int, text) -> Failure:
    """Classify an SMTP answer: 5xx is permanent, anything else is worth another try."""
    words = one_line(text)
    if 500 <= code < 600:
        return Failure(
            True, _("Refused by the server (%(code)s): %(text)s", code=code, text=words), code
        )
    return Failure(False, _("Server busy (%(code)s): %(text)s", code=code, text=words), code)


def server_failing(error: BaseException) -> bool:
    """Tell whether an error opening a session (``connect``) says the server itself is failing.

    Cannot connect (refused, unreachable, unknown name, timeout), the connection dropped or the
    TLS handshake failed before any message, or a 421 ("service not available") to the greeting
    or a command: no e-mail can go through it until it is back, whatever the e-mail. Not so for
    a refused login, a missing extension or an internal address: those are the settings' (the
    admin fixes them; probing a refused login every minute could lock the account). Once a
    session is open, what happens to one message (a 4xx, a drop, a timeout on a large message)
    is that e-mail's: the batch reconnects, and only a failure to reconnect is the server's.
    """
    if isinstance(error, smtplib.SMTPResponseException):  # greeting, EHLO, AUTH, MAIL, DATA
        return error.smtp_code == 421
    if isinstance(error, smtplib.SMTPNotSupportedError | smtplib.SMTPRecipientsRefused):
        return False
    if isinstance(error, InternalAddressRefused):
        return False
    return isinstance(error, OSError)  # smtplib's disconnections, ssl, socket, timeouts, DNS


def classify(error: BaseException) -> Failure:
    """Turn an exception of ``connect`` or ``sendmail`` into a ``Failure``."""
    if isinstance(error, oauth.OAuthProblem):  # the provider's words, said in French already
        return Failure(False, str(error))
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return Failure(
            True,
            _(
                "The server refused the login or password (%(code)s): %(text)s",
                code=error.smtp_code,
                text=one_line(error.smtp_error),
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


# "No such user": the enhanced status codes (RFC 3463) that say the mailbox does not exist, the
# SMTP codes that may carry such a refusal (552 is "storage exceeded", never this), and the
# phrasings of servers that give no enhanced code (folded: lower case, no accents).
NO_MAILBOX_CODES = {(5, 1, 1), (5, 1, 2), (5, 1, 10)}
NO_MAILBOX_REPLY_CODES = {550, 551, 553, 554}
_ENHANCED_CODE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_ADDRESS = re.compile(r"<[^<>]*>|\S+@\S+")
_NO_MAILBOX_WORDS = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|account)"
    r"|(recipient|addressee|mailbox|user) (unknown|not found)|unknown (recipient|mailbox)"
    r"|(account|mailbox|user|address|recipient) (that you tried to reach )?does ?n[o']t exist"
    r"|recipientnotfound|recipaddrnotfound|no mailbox here by that name"
    r"|doesn'?t have an? \S+ account"
    r"|utilisateur inconnu|destinataire inconnu|adresse inconnue|boite aux lettres inexistante"
    r"|(adresse|boite aux lettres|compte|utilisateur|destinataire) n'existe pas"
)
# A refusal for the sender, the message or a policy is never about the mailbox, whatever else
# it says (Postfix's address verification quotes the remote server's words, for instance).
_NOT_ABOUT_THE_MAILBOX = re.compile(
    r"spam|polic(y|ies)|block|blacklist|denylist|reputation|banned|quota|\bfull\b|\bspf\b"
    r"|\bdkim\b|\bdmarc\b|relay(ing)? (access )?(denied|not permitted)|not authori[sz]ed"
    r"|access denied|rate limit|too many|indesirable|bloque|liste noire|pleine"
)


def mailbox_unknown(code: int, text) -> bool:
    """Tell whether a recipient's permanent refusal says that its mailbox does not exist.

    Yes for the enhanced codes 5.1.1 (bad destination mailbox), 5.1.2 (bad destination system:
    the address's domain does not exist, so no mailbox there either; a server that could not
    look the domain up answers 4.1.2, which waits) and 5.1.10 (Exchange Online's
    ``RESOLVER.ADR.RecipientNotFound``; RFC 7505 also gives it to a null MX: no mailbox at that
    domain either), or, without an enhanced code (or with 5.0.0), for a "user unknown" phrasing
    in English or French. Never for a 4xx, a 552, another enhanced code (5.7.x policy, 5.2.2
    mailbox full, 5.1.8 bad sender…), nor for words of policy, spam or quota: the directory
    marks the address unreachable on this answer, so a doubt leaves it as it is. RFC 5321's
    "mailbox unavailable" alone is such a doubt: servers also say it for policy refusals.
    """
    if code not in NO_MAILBOX_REPLY_CODES:
        return False
    words = fold(_ADDRESS.sub(" ", one_line(text)))
    if _NOT_ABOUT_THE_MAILBOX.search(words):
        return False
    enhanced = {tuple(int(part) for part in found) for found in _ENHANCED_CODE.findall(words)}
    enhanced.discard((5, 0, 0))
    if enhanced:
        return enhanced <= NO_MAILBOX_CODES
    return _NO_MAILBOX_WORDS.search(words) is not None
