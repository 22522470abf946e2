"""Huge numbers posted to the composer are treated like any unknown id, not a server error."""

from __future__ import annotations

import pytest

from tests.compose.conftest import FR

HUGE = "99999999999999999999"


@pytest.mark.parametrize("field", ["account_id", "other_ids"])
def test_a_huge_id_in_the_composer_is_answered_like_an_unknown_one(client, sender, field):
    form = {"subject": "Bonjour", "body": "Texte", "cc": "parent@example.org"}
    unknown = client.post("/e-mail/nouveau", data={**form, field: "999999"}, headers=FR)
    huge = client.post("/e-mail/nouveau", data={**form, field: HUGE}, headers=FR)
    assert huge.status_code == unknown.status_code < 500
