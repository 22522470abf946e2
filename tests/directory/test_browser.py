"""In a browser: a secretary filters students by cohort, ticks some, and sees the counter follow."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect


@pytest.mark.browser
def test_secretary_filters_students_by_cohort_and_selects_some(
    page, sign_in_page, make_person, make_cohort
):
    l1 = make_cohort("L1 Informatique", groups=("TD1", "TD2"))
    bts = make_cohort("BTS SIO 1")
    for n, first in enumerate(("Élodie", "Hugo", "Inès", "Léo")):
        make_person(last_name=f"Info{n}", first_name=first, cohort=l1, groups=[l1.groups[n % 2]])
    for n in range(3):
        make_person(last_name=f"Sio{n}", first_name="Zoé", cohort=bts)
    sign_in_page("staff")

    page.get_by_text("Plannings").first.click()
    page.get_by_role("link", name="Étudiants").first.click()
    # The rows are there before the deferred htmx binds the filters: a choice made then is lost.
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("Étudiants")
    expect(page.locator("table.people tbody tr")).to_have_count(7)
    expect(page.locator("#selection-counter")).to_have_text("0 sélectionné(s)")

    page.select_option("select[name=cohort]", label="L1 Informatique")
    expect(page.locator("table.people tbody tr")).to_have_count(4)
    expect(page).to_have_url(re.compile(f"cohort={l1.id}"))

    page.get_by_label("Sélectionner INFO0 Élodie").check()
    expect(page.locator("#selection-counter")).to_have_text("1 sélectionné(s)")
    page.get_by_label("Sélectionner INFO2 Inès").check()
    expect(page.locator("#selection-counter")).to_have_text("2 sélectionné(s)")
    page.get_by_label("Sélectionner INFO0 Élodie").uncheck()
    expect(page.locator("#selection-counter")).to_have_text("1 sélectionné(s)")

    # The selection is on the server: a reload keeps it.
    page.reload()
    expect(page.locator("#selection-counter")).to_have_text("1 sélectionné(s)")
    expect(page.get_by_label("Sélectionner INFO2 Inès")).to_be_checked()

    # Text filter (accent-free), then every student matching it.
    page.fill("input[name=q]", "zoe")
    expect(page.locator("table.people tbody")).to_have_text("Personne ne correspond à ce filtre.")
    page.select_option("select[name=cohort]", label="Toutes")
    expect(page.locator("table.people tbody tr")).to_have_count(3)
    page.get_by_role("button", name="Sélectionner tout ce qui correspond au filtre (3)").click()
    expect(page.locator("#selection-counter")).to_have_text("4 sélectionné(s)")
    expect(page.locator("table.people input[type=checkbox]:checked")).to_have_count(3)

    page.get_by_role("button", name="Tout désélectionner").click()
    expect(page.locator("#selection-counter")).to_have_text("0 sélectionné(s)")


@pytest.mark.browser
def test_secretary_filters_the_absences_and_selects_two(
    page, sign_in_page, make_person, make_cohort, make_absence
):
    from datetime import date

    l1 = make_cohort("L1 Informatique")
    bts = make_cohort("BTS SIO 1")
    zoe = make_person(last_name="Zola", first_name="Zoé", cohort=l1)
    hugo = make_person(last_name="Hugo", first_name="Victor", cohort=l1)
    ines = make_person(last_name="Sio", first_name="Inès", cohort=bts)
    make_absence(zoe, date(2026, 1, 5), course_label="Réseaux")
    make_absence(zoe, date(2026, 1, 12), justified=True, reason="Transport")
    make_absence(hugo, date(2026, 1, 6), course_label="Anglais")
    make_absence(ines, date(2026, 1, 7))
    sign_in_page("staff")

    page.get_by_text("Plannings").first.click()
    page.get_by_role("link", name="Étudiants › Absences").first.click()
    # The rows are there before the deferred htmx binds the filters: a choice made then is lost.
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("Absences")
    expect(page.locator("table.absences tbody tr")).to_have_count(4)

    page.select_option("select[name=cohort]", label="L1 Informatique")
    expect(page.locator("table.absences tbody tr")).to_have_count(3)
    page.select_option("select[name=justified]", label="Non justifiée")
    expect(page.locator("table.absences tbody tr")).to_have_count(2)
    expect(page).to_have_url(re.compile("justified=no"))

    page.get_by_label("Sélectionner ZOLA Zoé 05/01/2026").check()
    expect(page.locator("#selection-counter")).to_have_text("1 sélectionné(s)")
    page.get_by_label("Sélectionner HUGO Victor 06/01/2026").check()
    expect(page.locator("#selection-counter")).to_have_text("2 sélectionné(s)")

    # The selection stays on the server when the filter changes and the page reloads.
    page.select_option("select[name=justified]", label="Tous")
    expect(page.locator("table.absences tbody tr")).to_have_count(3)
    page.reload()
    expect(page.locator("#selection-counter")).to_have_text("2 sélectionné(s)")
    expect(page.locator("table.absences input[type=checkbox]:checked")).to_have_count(2)
