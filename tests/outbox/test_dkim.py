"""DKIM signatures of what the worker sends, verified by dkimpy against a real local DNS server.

The keys are generated, published in the ``dns_zone`` (dnslib) and activated through
``delivery.dkim_keys`` as the admin's page does; the received bytes are verified by dkimpy, which
asks the same DNS server through dnspython.
"""

from __future__ import annotations

import dkim
import dns.resolver
import pytest

from hpmail.delivery import dkim_keys
from hpmail.delivery.diagnostics import diagnose
from hpmail.delivery.dns import Lookup
from hpmail.outbox.api import Address, AttachmentSpec, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.attachments import store_attachment
from hpmail.outbox.dkim import SIGNED_HEADERS, signed_headers
from hpmail.outbox.models import DkimKey, DkimState
from tests.fixtures.worker import wait_until, worker_app_config

SCHOOL = "lycee-demo.fr"
SENDER = Sender(f"ne-pas-repondre@{SCHOOL}", "Lycée Démo", reply_to=f"secretariat@{SCHOOL}")


@pytest.fixture
def publish_and_activate(db, dns_zone, make_user):
    """Return ``publish_and_activate(domain, selector, algorithm)``: a key live as the admin
    makes it (generated, its record served by the DNS server, activated after the look-up)."""
    admin = make_user("admin")

    def make(domain: str, selector: str, algorithm: str = "rsa") -> DkimKey:
        key = dkim_keys.generate(domain, selector, algorithm, admin)
        dns_zone.add(dkim_keys.zone_line(key))
        dkim_keys.activate(key, Lookup(5, []), admin)
        db.session.commit()
        return key

    return make


@pytest.fixture
def dns_txt(app, dns_zone):
    """dkimpy's DNS function, asking the test's DNS server through dnspython."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = list(app.config["DNS_SERVERS"])
    resolver.port = int(app.config["DNS_PORT"])

    def get_txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    return get_txt


def verified(message: bytes, dns_txt) -> list[bool]:
    """Return, for each DKIM-Signature of ``message``, whether it verifies."""
    checker = dkim.DKIM(message, minkey=1024)
    count = sum(1 for name, _value in checker.headers if name.lower() == b"dkim-signature")
    results = []
    for index in range(count):
        try:
            results.append(bool(checker.verify(idx=index, dnsfunc=dns_txt)))
        except dkim.DKIMException:
            results.append(False)
    return results


def signature_tags(message: bytes) -> list[dict[str, str]]:
    checker = dkim.DKIM(message)
    return [
        dkim_keys.tags(value.decode())
        for name, value in checker.headers
        if name.lower() == b"dkim-signature"
    ]


def composer_mailing(db, sender: Sender = SENDER, subject: str = "Réunion parents–professeurs"):
    """A mailing as the composer writes it: rich text, an attachment, To and Cc."""
    notice = store_attachment(b"%PDF-1.4\n% convocation\n", "application/pdf")
    mailing = queue_mailing(
        author_id=None,
        sender=sender,
        subject=subject,
        text_body="Bonjour,\n\nLa réunion aura lieu jeudi à 18 h.\n",
        html_body="<p>Bonjour,</p><p>La réunion aura lieu <strong>jeudi</strong> à 18 h.</p>",
        attachments=[AttachmentSpec(notice, "convocation.pdf", "application/pdf")],
        emails=[
            EmailSpec(
                to=[Address("parent.martin@example.org", "Éloïse Martin")],
                cc=[Address("prof.principal@example.org", "M. Durand")],
            )
        ],
    )
    db.session.commit()
    return mailing


class TestWorkerSigns:
    pytestmark = pytest.mark.worker

    @pytest.fixture
    def app_config(self, tmp_path):
        return worker_app_config(tmp_path)

    def test_an_email_of_a_domain_with_an_active_rsa_key_arrives_signed_and_verifies(
        self, db, smtp_server, delivery_settings, worker, publish_and_activate, dns_txt
    ):
        delivery_settings(smtp_server)
        key = publish_and_activate(SCHOOL, "hpmail2026")
        dispatch(composer_mailing(db))
        worker()
        wait_until(lambda: smtp_server.received, message="nothing arrived")

        data = smtp_server.received[0].data
        assert verified(data, dns_txt) == [True]
        (tags,) = signature_tags(data)
        assert tags["d"] == SCHOOL and tags["s"] == key.selector
        assert tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/relaxed"
        signed = tags["h"].lower().split(":")
        for header in ("from", "to", "cc", "subject", "date", "message-id", "reply-to"):
            assert signed.count(header) == 2, header  # present once, oversigned once
        assert {"mime-version", "content-type"} <= set(signed)

        # A message changed on its way no longer verifies: its body, or its Subject.
        assert verified(data.replace(b"jeudi", b"samedi"), dns_txt) == [False]
        subject = smtp_server.received[0].message["Subject"]
        assert subject == "Réunion parents–professeurs"
        forged = data.replace(b"\r\nSubject: ", b"\r\nSubject: Urgent ", 1)
        assert verified(forged, dns_txt) == [False]
        # ... nor a Reply-To added to a genuine e-mail (replies diverted).
        added = data.replace(b"\r\nDate: ", b"\r\nReply-To: pirate@example.net\r\nDate: ", 1)
        assert verified(added, dns_txt) == [False]

    def test_rsa_and_ed25519_both_active_give_two_signatures_that_verify(
        self, db, smtp_server, delivery_settings, worker, publish_and_activate, dns_txt
    ):
        college = "college-exemple.fr"
        delivery_settings(
            smtp_server,
            sender_address=f"ne-pas-repondre@{college}",
            allowed_domains=college,
        )
        publish_and_activate(college, "rsa2026")
        publish_and_activate(college, "ed2026", "ed25519")
        sender = Sender(f"ne-pas-repondre@{college}", "Collège Exemple")
        dispatch(composer_mailing(db, sender))
        worker()
        wait_until(lambda: smtp_server.received, message="nothing arrived")

        data = smtp_server.received[0].data
        assert sorted(tags["a"] for tags in signature_tags(data)) == [
            "ed25519-sha256",
            "rsa-sha256",
        ]
        assert verified(data, dns_txt) == [True, True]
        assert verified(data.replace(b"jeudi", b"samedi"), dns_txt) == [False, False]

    def test_a_key_retired_while_the_worker_runs_no_longer_signs(
        self, db, smtp_server, delivery_settings, worker, publish_and_activate, dns_txt, make_user
    ):
        delivery_settings(smtp_server)
        key = publish_and_activate(SCHOOL, "hpmail2026")
        worker()
        dispatch(composer_mailing(db, subject="Avant"))
        wait_until(lambda: len(smtp_server.received) == 1, message="nothing arrived")
        assert verified(smtp_server.received[0].data, dns_txt) == [True]

        dkim_keys.retire(key, make_user("admin"))  # the worker keeps running
        db.session.commit()
        dispatch(composer_mailing(db, subject="Après"))
        wait_until(lambda: len(smtp_server.received) == 2, message="second e-mail not sent")
        after = smtp_server.received[1]
        assert after.message["Subject"] == "Après"
        assert b"DKIM-Signature" not in after.data


def test_an_email_outside_the_signed_domains_is_not_signed(
    db, smtp_server, delivery_settings, publish_and_activate
):
    delivery_settings(smtp_server, allowed_domains=f"{SCHOOL}\nautre-ecole.fr")
    publish_and_activate("autre-ecole.fr", "hpmail2026")
    dispatch(composer_mailing(db))  # sent in the request (HUEY_IMMEDIATE)
    assert len(smtp_server.received) == 1
    assert b"DKIM-Signature" not in smtp_server.received[0].data


def test_a_subdomain_of_an_allowed_wildcard_is_signed_with_its_parent_domains_key(
    db, smtp_server, delivery_settings, publish_and_activate, dns_txt
):
    delivery_settings(
        smtp_server,
        sender_address="lettres@iut.univ-exemple.fr",
        allowed_domains="*.univ-exemple.fr",
    )
    publish_and_activate("univ-exemple.fr", "hpmail2026")
    dispatch(composer_mailing(db, Sender("lettres@iut.univ-exemple.fr", "IUT")))
    data = smtp_server.received[0].data
    assert [tags["d"] for tags in signature_tags(data)] == ["univ-exemple.fr"]
    assert verified(data, dns_txt) == [True]


def test_a_key_that_cannot_be_decrypted_leaves_the_email_unsigned_but_sent(
    db, smtp_server, delivery_settings, publish_and_activate, caplog
):
    """The Fernet key changed since the DKIM key was saved: the e-mail still goes (unsigned)."""
    delivery_settings(smtp_server)
    key = publish_and_activate(SCHOOL, "hpmail2026")
    key.private_key_encrypted = b"gAAAAAnot-a-fernet-token"
    db.session.commit()
    dispatch(composer_mailing(db))
    assert len(smtp_server.received) == 1
    assert b"DKIM-Signature" not in smtp_server.received[0].data
    assert "cannot be decrypted" in caplog.text


def test_the_test_send_is_signed_like_every_email(
    db, smtp_server, make_transport, publish_and_activate, dns_txt
):
    publish_and_activate(SCHOOL, "hpmail2026")
    transport = make_transport(smtp_server)
    diagnosis = diagnose(transport, f"ne-pas-repondre@{SCHOOL}", "admin@example.org", "Lycée")
    assert diagnosis.succeeded
    assert verified(smtp_server.received[0].data, dns_txt) == [True]


def test_only_the_headers_present_are_signed_each_oversigned_once():
    message = (
        b"Message-ID: <1@lycee-demo.fr>\r\nTo: a@example.org\r\nFrom: b@lycee-demo.fr\r\n"
        b"Subject: x\r\n folded\r\nX-Other: y\r\n\r\nbody\r\nFrom: not a header\r\n"
    )
    include = [name.decode() for name in signed_headers(message)]
    assert include.count("from") == 2 and include.count("to") == 2
    assert include.count("subject") == 2 and include.count("message-id") == 2
    assert include.count("cc") == 1  # absent: signed as absent, so none can be added
    assert "x-other" not in include and set(include) == set(SIGNED_HEADERS)


def test_a_new_key_signs_nothing_until_it_is_activated(
    db, smtp_server, delivery_settings, make_user
):
    delivery_settings(smtp_server)
    key = dkim_keys.generate(SCHOOL, "hpmail2026", "rsa", make_user("admin"))
    db.session.commit()
    assert key.state == DkimState.NEW
    dispatch(composer_mailing(db))
    assert b"DKIM-Signature" not in smtp_server.received[0].data
