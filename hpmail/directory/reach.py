"""Who can be reached by e-mail: the one count every page shows, so that they all agree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flask_babel import gettext as _

from hpmail.directory.models import EmailStatus, Person, PersonKind
from hpmail.directory.refusals import refusal_note


@dataclass
class Reach:
    """People with a valid address, and the others with the reason they cannot be reached."""

    reachable: list[Person] = field(default_factory=list)
    unreachable: list[tuple[Person, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.reachable) + len(self.unreachable)

    def count_by_kind(self) -> dict[str, tuple[int, int]]:
        """Return {kind: (reachable, total)} for the kinds present."""
        counts: dict[str, list[int]] = {}
        for person in self.reachable:
            counts.setdefault(person.kind, [0, 0])[0] += 1
            counts[person.kind][1] += 1
        for person, _reason in self.unreachable:
            counts.setdefault(person.kind, [0, 0])[1] += 1
        order = list(PersonKind)
        return {kind: tuple(counts[kind]) for kind in sorted(counts, key=order.index)}


def unreachable_reason(person: Person) -> str | None:
    """Return why ``person`` cannot get an e-mail (translated), or None if they can."""
    if person.email_status == EmailStatus.VALID and person.email:
        return None
    if person.email_status == EmailStatus.INVALID:
        return _("Invalid e-mail address: %(address)s", address=person.email or "")
    if person.email_status == EmailStatus.REFUSED:
        return _(
            "Address refused by the server (%(address)s) %(when_and_words)s",
            address=person.email or "",
            when_and_words=refusal_note(person),
        )
    return _("No e-mail address")


def reachability(people: Iterable[Person]) -> Reach:
    """Split ``people`` (each once, first order kept) into reachable and unreachable."""
    reach = Reach()
    seen: set[int] = set()
    for person in people:
        if person.id in seen:
            continue
        seen.add(person.id)
        reason = unreachable_reason(person)
        if reason is None:
            reach.reachable.append(person)
        else:
            reach.unreachable.append((person, reason))
    return reach
