"""Fixtures of the accounts tests: a configured delivery to a real SMTP server, ready accounts."""

from __future__ import annotations

import re

import pytest

from hpmail.accounts.models import Account, AccountKind
from hpmail.accounts.verification import hash_answer
from hpmail.core.time import utcnow
from hpmail.outbox.models import Security, Transport
from hpmail.outbox.settings import server_settings

SERVER_ADDRESS = "hpmail@lycee.example"
SECRET_ANSWER = "Victor Hugo"
HTMX = {"HX-Request": "true", "Accept-Language": "fr"}
FR = {"Accept-Language": "fr"}


@pytest.fixture
def mail_server(db, smtp_server):
    """Delegated delivery through a real aiosmtpd server; lycee.example is an allowed domain."""
    transport = Transport(host=smtp_server.host, port=smtp_server.port, security=Security.NONE)
    db.session.add(transport)
    db.session.flush()
    settings = server_settings()
    settings.delegate = True
    settings.sender_name = "Lycée de test"
    settings.sender_address = SERVER_ADDRESS
    settings.allowed_domains = "lycee.example"
    settings.transport_id = transport.id
    db.session.commit()
    return smtp_server


def code_in(server, address: str) -> str:
    """Return the verification code of the last e-mail ``server`` received for ``address``."""
    for received in reversed(server.received):
        if address in received.rcpt_tos:
            text = received.message.get_body(("plain",)).get_content()
            return re.search(r"\b(\d{6})\b", text).group(1)
    raise AssertionError(f"no e-mail for {address}")


@pytest.fixture
def make_account(db, make_user):
    """Return ``make_account(address, members=(), kind="school", owner=None)``: a ready account."""

    def make(
        address="secretariat@lycee.example",
        members=(),
        kind=AccountKind.SCHOOL,
        owner=None,
        label="Secrétariat",
    ):
        account = Account(
            kind=kind,
            label=label,
            display_name=label,
            address=address,
            owner_id=owner.id if owner else None,
            verified_at=utcnow(),
            secret_question="Auteur préféré ?" if kind == AccountKind.SCHOOL else None,
            secret_answer_hash=hash_answer(SECRET_ANSWER) if kind == AccountKind.SCHOOL else None,
        )
        db.session.add(account)
        db.session.flush()
        account.members.extend(members)
        db.session.commit()
        return account

    return make


def unlock(client, account, answer: str = SECRET_ANSWER):
    """Give the secret answer of ``account`` on its page: its changes are unlocked a while."""
    return client.post(
        f"/configuration/comptes-etablissement/{account.id}/deverrouiller",
        data={"unlock-current_answer": answer},
        headers=FR,
    )
