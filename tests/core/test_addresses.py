"""One address check for lists, forms and the outbox: what counts as reachable can be sent."""

import pytest

from hpmail.core.addresses import EmailNotValidError, normalized_address
from hpmail.directory.emails import email_status_of
from hpmail.directory.models import EmailStatus


def test_plain_address_is_valid_and_normalised():
    assert normalized_address("  Marie.Curie@Exemple.FR ") == "Marie.Curie@exemple.fr"
    assert email_status_of("marie.curie@exemple.fr") is EmailStatus.VALID


def test_accented_local_part_is_invalid_because_the_outbox_cannot_carry_it():
    with pytest.raises(EmailNotValidError):
        normalized_address("inès.durand@exemple.fr")
    assert email_status_of("inès.durand@exemple.fr") is EmailStatus.INVALID


def test_accented_domain_is_kept_in_its_ascii_form():
    assert normalized_address("contact@lycée-exemple.fr") == "contact@xn--lyce-exemple-deb.fr"


@pytest.mark.parametrize(
    "value", ["sans-arobase", "a@b", "deux@@exemple.fr", "x@exemple.fr\r\nBcc: y"]
)
def test_malformed_addresses_are_invalid(value):
    assert email_status_of(value) is EmailStatus.INVALID
