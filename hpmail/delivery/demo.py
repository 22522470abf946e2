"""Demo delivery: the server settings point at the local demo mailbox (see ``mailbox.py``)."""

from __future__ import annotations

import logging

from flask import current_app

from hpmail.extensions import db
from hpmail.outbox.models import Auth, Security, ServerSettings, Transport

log = logging.getLogger(__name__)

DEMO_SENDER_NAME = "Lycée de démonstration"
DEMO_SENDER_ADDRESS = "ne-pas-repondre@lycee-demo.fr"
DEMO_DOMAIN = "lycee-demo.fr"


def configure_demo_delivery() -> ServerSettings:
    """Make the server deliver every e-mail to the demo mailbox, as the demo school's sender."""
    from hpmail.outbox.settings import server_settings

    settings = server_settings()
    settings.delegate = True
    settings.sender_name = DEMO_SENDER_NAME
    settings.sender_address = DEMO_SENDER_ADDRESS
    settings.allowed_domains = DEMO_DOMAIN
    if settings.transport is None:
        settings.transport = Transport()
        db.session.add(settings.transport)
    transport = settings.transport
    transport.host = current_app.config["DEMO_MAILBOX_HOST"]
    transport.port = int(current_app.config["DEMO_MAILBOX_PORT"])
    transport.security = Security.NONE
    transport.auth = Auth.NONE
    transport.username = ""
    transport.secret_encrypted = None
    transport.oauth_refresh_encrypted = None
    transport.oauth_account = ""
    transport.oauth_error = None
    transport.timeout_seconds = 10
    transport.per_minute = transport.per_day = None
    transport.ca_certificates = None
    db.session.flush()
    log.info("demo delivery: server settings point at %s:%s", transport.host, transport.port)
    return settings
