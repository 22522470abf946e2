"""The admin creates a user in the browser; that user signs in with the provisional password."""

import pytest


@pytest.mark.browser
def test_admin_creates_a_user_in_the_page_and_that_user_signs_in(page, sign_in_page):
    sign_in_page("admin", at="/utilisateurs")
    page.click("text=Nouvel utilisateur")
    page.fill("input[name=login]", "claire.moreau")
    page.fill("input[name=display_name]", "Claire Moreau")
    page.fill("input[name=email]", "claire.moreau@lycee.example")
    page.select_option("select[name=role]", "teacher")
    page.click("button[type=submit].primary")
    password = page.inner_text("#provisional-password").strip()
    assert "Mot de passe provisoire" in page.inner_text("main")
    assert len(password) >= 10

    page.click("text=Se déconnecter")
    page.wait_for_url("**/connexion")
    page.fill("input[name=login]", "claire.moreau")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert "Claire Moreau" in page.inner_text("header")
    assert "Utilisateurs" not in page.inner_text("header")  # a teacher has no user management


@pytest.mark.browser
def test_admin_filters_users_and_links_one_to_a_person_with_suggestions(
    page, sign_in_page, make_user, make_person
):
    make_user("teacher", login="paul", display_name="Paul Durand")
    make_user("staff", login="sophie", display_name="Sophie Bernard")
    make_person("teacher", last_name="Durand", first_name="Paul")
    sign_in_page("admin", at="/utilisateurs")
    page.fill("input[name=q]", "durand")
    page.wait_for_function(
        "() => !document.querySelector('#user-rows').innerText.includes('Sophie')"
    )
    page.click("#user-rows a:text-is('paul')")
    # The user's page loaded (and htmx with it) before typing, or the search would go unheard.
    page.wait_for_url("**/utilisateurs/*", wait_until="load")
    page.fill("#person-search", "dura")
    page.check("#person-suggestions input[type=radio]")
    page.click("#person-suggestions button[type=submit]")
    assert "Lié à DURAND Paul." in page.inner_text("#person-link")
