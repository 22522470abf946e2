"""The page every browser test of a pytest process shares: each test finds it as a new one."""

from __future__ import annotations

import pytest

from tests.fixtures.browser import VIEWPORT

pytestmark = pytest.mark.browser

CLIPBOARD_STATE = "() => navigator.permissions.query({name: 'clipboard-read'}).then(p => p.state)"
STORE = "() => { sessionStorage.setItem('left', '1'); localStorage.setItem('left', '1'); }"
STORED = "() => [sessionStorage.getItem('left'), localStorage.getItem('left')]"


def test_what_a_test_leaves_on_the_shared_page_is_gone_for_the_next(
    page, shared_tab, sign_in_page, live_server
):
    sign_in_page("staff")
    clipboard_at_first = page.evaluate(CLIPBOARD_STATE)
    page.context.grant_permissions(["clipboard-read"], origin=live_server)
    assert page.evaluate(CLIPBOARD_STATE) == "granted"
    # Storage on another origin (the same server by another name), then on the page's own.
    elsewhere = live_server.replace("127.0.0.1", "localhost")
    page.goto(f"{elsewhere}/connexion")
    page.evaluate(STORE)
    page.goto("/connexion")
    page.evaluate(STORE)
    assert page.evaluate(STORED) == ["1", "1"]
    dialogs = []
    page.on("dialog", lambda dialog: dialogs.append(dialog))  # never answers: a dialog would wait
    page.route("**/nulle-part", lambda route: route.fulfill(body="routé"))
    page.set_viewport_size({"width": 400, "height": 300})
    with pytest.raises(RuntimeError, match="fresh_page"):
        page.add_init_script("window.left = true")

    shared_tab.leave()  # what the page fixture does after a test, and before the next one:
    assert shared_tab.ready() is page

    assert page.url == "about:blank"
    assert page.context.cookies() == []
    assert page.viewport_size == VIEWPORT
    page.goto("/connexion")
    assert page.evaluate(STORED) == [None, None]
    page.goto(f"{elsewhere}/connexion")
    assert page.evaluate(STORED) == [None, None]
    page.goto("/connexion")
    assert page.evaluate(CLIPBOARD_STATE) == clipboard_at_first
    page.evaluate("() => alert('Personne ne répond')")  # dismissed: no test listens any more
    assert dialogs == []
    assert page.goto("/nulle-part").status == 404
