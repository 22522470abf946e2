"""SMTP pipelining (RFC 2920): MAIL, RCPT and DATA in one write when the server says PIPELINING.

``GroupServer`` is a loopback SMTP server that keeps the commands it reads until it answers
them. Saying PIPELINING, it answers nothing before DATA: a client waiting for the answer to MAIL
would wait until its timeout. Not saying it, it answers each command at once and notes any
command the client sent before the answer to the one before.
"""

from __future__ import annotations

import select
import smtplib
import socket
import threading

import pytest
from sqlalchemy import select as select_rows

from hpmail.outbox.api import Address, EmailSpec
from hpmail.outbox.models import EmailState, OutboundEmail, RecipientState
from hpmail.outbox.smtp import DeadlineSMTP
from hpmail.outbox.tasks import sweep
from tests.outbox.test_transport import send

MESSAGE = b"Subject: Conseil de classe\r\n\r\nBonjour,\r\n.ligne qui commence par un point\r\n"


class GroupServer:
    """One connection at a time; ``groups`` lists the commands answered together."""

    def __init__(self, pipelining: bool, refused: dict[str, str] | None = None) -> None:
        self.pipelining = pipelining
        self.refused = refused or {}
        self.groups: list[list[str]] = []
        self.sent_ahead: list[str] = []  # commands that came before the answer to the last one
        self.messages: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _address = self.listener.accept()
        with connection:
            self.buffer = b""
            self.connection = connection
            connection.sendall(b"220 groupes.example ESMTP\r\n")
            self._line()  # EHLO
            extensions = ["SIZE 10000000"] + (["PIPELINING"] if self.pipelining else [])
            connection.sendall(
                "".join(f"250-{e}\r\n" for e in ["groupes.example", *extensions[:-1]]).encode()
                + f"250 {extensions[-1]}\r\n".encode()
            )
            group: list[str] = []
            while (command := self._line()) is not None:
                verb = command[:4].upper()
                if verb == "QUIT":
                    connection.sendall(b"221 Bye\r\n")
                    return
                if not self.pipelining and (self.buffer or self._more_coming()):
                    self.sent_ahead.append(command)
                group.append(command)
                if self.pipelining and verb not in ("DATA", "RSET"):
                    continue  # a group ends with DATA: answer nothing before
                self._answer(group)
                group = []

    def _answer(self, group: list[str]) -> None:
        self.groups.append(group)
        accepted = 0
        for command in group:
            verb = command[:4].upper()
            if verb == "RCPT":
                address = command.split("<", 1)[1].rstrip(">")
                reply = self.refused.get(address, "250 2.1.5 Ok")
                accepted += reply.startswith("250")
                self.connection.sendall(f"{reply}\r\n".encode())
            elif verb == "DATA" and not accepted and self.pipelining:
                self.connection.sendall(b"554 5.5.1 No valid recipients\r\n")
            elif verb == "DATA":
                self.connection.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self.messages.append(self._message())
                self.connection.sendall(b"250 2.0.0 Queued\r\n")
            else:
                self.connection.sendall(b"250 2.0.0 Ok\r\n")

    def _more_coming(self) -> bool:
        return bool(select.select([self.connection], [], [], 0.1)[0])

    def _receive(self) -> bool:
        chunk = self.connection.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def _line(self) -> str | None:
        while b"\r\n" not in self.buffer:
            if not self._receive():
                return None
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode()

    def _message(self) -> bytes:
        while b"\r\n.\r\n" not in b"\r\n" + self.buffer:
            self._receive()
        content, self.buffer = (b"\r\n" + self.buffer).split(b"\r\n.\r\n", 1)
        return content[2:] + b"\r\n"

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def client(server: GroupServer) -> DeadlineSMTP:
    smtp = DeadlineSMTP("127.0.0.1", server.port, local_hostname="hpmail.test", timeout=3)
    smtp.ehlo()
    return smtp


def test_a_pipelining_server_gets_the_envelope_in_one_write_and_the_message_after_its_354():
    server = GroupServer(pipelining=True)
    smtp = client(server)
    refused = smtp.sendmail(
        "secretariat@lycee-demo.fr", ["a@example.org", "b@example.org"], MESSAGE
    )
    smtp.quit()
    server.close()

    assert refused == {}
    assert server.groups == [
        [
            f"MAIL FROM:<secretariat@lycee-demo.fr> SIZE={len(MESSAGE)}",
            "RCPT TO:<a@example.org>",
            "RCPT TO:<b@example.org>",
            "DATA",
        ]
    ]
    assert server.messages == [MESSAGE.replace(b"\r\n.ligne", b"\r\n..ligne")]  # dot-stuffed


def test_a_server_without_pipelining_gets_each_command_after_the_answer_to_the_one_before():
    server = GroupServer(pipelining=False)
    smtp = client(server)
    smtp.sendmail("secretariat@lycee-demo.fr", ["a@example.org", "b@example.org"], MESSAGE)
    smtp.quit()
    server.close()

    assert [len(group) for group in server.groups] == [1, 1, 1, 1]
    assert server.sent_ahead == []
    assert server.messages == [MESSAGE.replace(b"\r\n.ligne", b"\r\n..ligne")]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one by one"])
def test_a_refused_recipient_is_returned_and_every_refused_sends_no_message(pipelining):
    server = GroupServer(pipelining, {"parti@example.org": "550 5.1.1 No such user"})
    smtp = client(server)
    refused = smtp.sendmail("s@lycee-demo.fr", ["a@example.org", "parti@example.org"], MESSAGE)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refusal:
        smtp.sendmail("s@lycee-demo.fr", ["parti@example.org"], MESSAGE)
    smtp.quit()
    server.close()

    assert refused == {"parti@example.org": (550, b"5.1.1 No such user")}
    assert refusal.value.recipients == {"parti@example.org": (550, b"5.1.1 No such user")}
    assert len(server.messages) == 1  # the second e-mail's content never went
    assert [c.upper() for c in server.groups[-1]] == ["RSET"]  # its transaction was ended


@pytest.mark.usefixtures("no_sender_checks")
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one by one"])
def test_a_421_among_the_recipients_keeps_every_recipient_for_the_next_try(
    db, smtp_server, delivery_settings, later, pipelining
):
    """The server closes after the 421: no recipient got the message, none is refused for good."""
    smtp_server.recorder.pipelining = pipelining
    delivery_settings(smtp_server)
    smtp_server.refuse("b@example.org", "421 4.3.2 Service shutting down")
    to = [Address(f"{name}@example.org") for name in "abc"]
    send(db, emails=[EmailSpec(to=to)])

    db.session.expire_all()
    email = db.session.scalars(select_rows(OutboundEmail)).one()
    assert (email.state, email.last_code) == (EmailState.DEFERRED, 421)
    assert [r.state for r in email.recipients] == [RecipientState.PENDING] * 3
    assert smtp_server.received == []

    smtp_server.recorder.refused_recipients.clear()
    later(61)
    sweep()

    db.session.expire_all()
    assert email.state == EmailState.SENT
    assert [r.state for r in email.recipients] == [RecipientState.ACCEPTED] * 3
    (message,) = smtp_server.received
    assert message.rcpt_tos == ["a@example.org", "b@example.org", "c@example.org"]
