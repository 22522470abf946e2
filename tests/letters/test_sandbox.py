"""Letters in the sandbox: hostile templates refused with their line; limits when written."""

from __future__ import annotations

import time
from datetime import date

import pytest

from hpmail.letters import sandbox
from hpmail.letters.fields import field_names, list_fields
from hpmail.letters.models import Category
from hpmail.letters.service import checked_letter


def refused(category: str, body: str, subject: str = "") -> dict[str, list[str]]:
    with pytest.raises(sandbox.LetterRefused) as caught:
        checked_letter(category, "Lettre", subject, body)
    return caught.value.errors


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<p>{{ ''.__class__ }}</p>", "« ….__class__ » n'est pas un champ de cette lettre"),
        ("<p>{{ nom.__class__.__mro__ }}</p>", "n'est pas un champ de cette lettre"),
        ("<p>{{ nom|attr('__class__') }}</p>", "le filtre « attr » n'est pas permis"),
        ("<p>{% import 'base.html' as b %}</p>", "« {% import %} » n'est pas permis"),
        ("<p>{% from 'base.html' import x %}</p>", "« {% from … import %} » n'est pas permis"),
        ("<p>{% include 'base.html' %}</p>", "« {% include %} » n'est pas permis"),
        ("<p>{% extends 'base.html' %}</p>", "« {% extends %} » n'est pas permis"),
        ("<p>{% for i in range(10**9) %}x{% endfor %}</p>", "une boucle ne parcourt qu'un champ"),
        ("<p>{{ range(10**9)|length }}</p>", "appeler une fonction n'est pas permis"),
        ("<p>{{ 'x' * 1000000000 }}</p>", "les calculs ne sont pas permis"),
        ("<p>{{ nom['__class__'] }}</p>", "« […] » n'est pas permis"),
        ("<p>{% set x = nom %}</p>", "« {% set %} » n'est pas permis"),
        ("<p>{% macro m() %}x{% endmacro %}</p>", "« {% macro %} » n'est pas permis"),
        ("<p>{{ cycler.__init__.__globals__ }}</p>", "n'est pas un champ de cette lettre"),
        ("<p>{{ lipsum() }}</p>", "appeler une fonction n'est pas permis"),
        ("<p>{{ config }}</p>", "champ inconnu « config »"),
        ("<p>{{ nom|safe }}</p>", "le filtre « safe » n'est pas permis"),
        ("<p>{% autoescape false %}{{ nom }}{% endautoescape %}</p>", "{% autoescape %}"),
        ("<p>{% filter upper %}x{% endfilter %}</p>", "« {% filter %} » n'est pas permis"),
        ("<p>{{ adresse_entreprise }}</p>", "champ inconnu « adresse_entreprise »"),
    ],
)
def test_a_hostile_or_wrong_letter_is_refused_with_a_french_message_naming_its_line(
    app, body, expected
):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        errors = refused(Category.STUDENTS, "<p>Bonjour {{ prenom }},</p><p>Texte</p>" + body)
    assert errors["body"][0].startswith("Ligne 3 : "), errors
    assert expected in errors["body"][0], errors


def test_a_syntax_error_is_refused_with_its_line(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        errors = refused(Category.STUDENTS, "<p>Bonjour</p><p>{{ nom }</p>")
    assert errors["body"][0].startswith("Ligne 2 : un champ ou une instruction est mal écrit")


def test_a_loop_item_reads_only_its_own_fields(app):
    body = "<ul>{% for absence in absences %}<li>{{ absence.person }}</li>{% endfor %}</ul>"
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        errors = refused(Category.ABSENCES, body)
    assert "« absence.person » n'est pas un champ de cette lettre" in errors["body"][0]


def test_the_subject_is_checked_like_the_body(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        errors = refused(Category.TEACHERS, "<p>{{ nom }}</p>", subject="{{ promotion }}")
    assert errors == {"subject": ["Ligne 1 : champ inconnu « promotion »."]}


def test_the_fields_of_the_category_and_the_editor_s_entities_are_accepted(app):
    body = (
        "<p>{{ prenom }} {{ nom|upper }}, {{ promotion }} ({{ groupes }})</p>"
        "<p>{% if justifiee == &quot;Non&quot; and nombre_absences &gt; &quot;1&quot; %}"
        "Non justifiées{% endif %}</p>"
        "<ul>{% for absence in absences %}<li>{{ loop.index }}. {{ absence.date }} "
        "{{ absence.heures }}</li>{% endfor %}</ul><p>{{ total_heures }}</p>"
    )
    with app.test_request_context():
        title, subject, clean = checked_letter(Category.ABSENCES, " Titre ", "{{ nom }}", body)
    assert (title, subject) == ("Titre", "{{ nom }}")
    assert "{% for absence in absences %}" in clean


def _absences(count: int):
    from hpmail.letters.fields import AbsenceLine

    return [AbsenceLine("1 décembre 2026", "8 h 00 – 10 h 00", "Droit", "", "Non", "2 h")] * count


def _values(count: int) -> dict:
    names = field_names(Category.ABSENCES)
    values = {name: "x" for name in names}
    values["absences"] = _absences(count)
    return values


def test_a_letter_that_loops_too_long_is_stopped_by_its_time_limit(app):
    # Three loops in one another, writing nothing: 200³ steps, each checks the deadline.
    source = (
        "{% for a in absences %}{% for b in absences %}{% for c in absences %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    )
    lists = list_fields(Category.ABSENCES)
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert not sandbox.problems(source, field_names(Category.ABSENCES), lists)
        started = time.monotonic()
        with pytest.raises(sandbox.RenderLimit, match="trop longue à écrire"):
            sandbox.render(source, _values(200), lists, seconds=0.5)
    assert time.monotonic() - started < 1.5


def test_a_letter_that_grows_too_large_is_stopped_by_its_size_limit(app):
    source = "{% for a in absences %}{% for b in absences %}{{ b.horaire }}{% endfor %}{% endfor %}"
    lists = list_fields(Category.ABSENCES)
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        with pytest.raises(sandbox.RenderLimit, match="trop longue pour une seule fiche"):
            # Time enough that a busy machine never trips the time limit first.
            sandbox.render(source, _values(1000), lists, seconds=60)
        # The same letter for a student with a few absences is written.
        assert sandbox.render(source, _values(3), lists).count("8 h 00") == 9


def test_a_letter_saved_before_a_rule_is_checked_again_when_drawn(app):
    lists = list_fields(Category.STUDENTS)
    values = {name: "x" for name in field_names(Category.STUDENTS)}
    with app.test_request_context(), pytest.raises(sandbox.LetterRefused):
        sandbox.render("{{ nom.__class__ }}", values, lists)


def test_field_values_are_escaped_in_the_letter_s_html(app):
    lists = list_fields(Category.STUDENTS)
    values = {name: "" for name in field_names(Category.STUDENTS)}
    values["nom"] = "<script>alert(1)</script>"
    values["date_du_jour"] = date(2026, 12, 2).isoformat()
    out = sandbox.render("<p>{{ nom }}</p>", values, lists)
    assert out == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
