"""Request glue: htmx fragments versus pages, and the client address behind a reverse proxy."""

from hpmail import create_app
from hpmail.web import public


def test_htmx_gets_a_fragment_but_a_history_restore_gets_the_whole_page(client, login_as):
    login_as("staff")
    page = client.get("/plannings/student", follow_redirects=True)
    fragment = client.get(
        page.request.path + "?" + page.request.query_string.decode(), headers={"HX-Request": "true"}
    )
    restored = client.get(
        page.request.path + "?" + page.request.query_string.decode(),
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert fragment.status_code == restored.status_code == 200
    assert "<html" not in fragment.text
    assert "<html" in restored.text
    assert "HX-Request" in fragment.headers["Vary"] and "HX-Request" in restored.headers["Vary"]


def test_behind_one_proxy_the_sign_in_throttle_sees_the_client_address(tmp_path):
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "QUEUE_URL": "memory", "PROXY_COUNT": 1}
    )

    @app.route("/adresse")
    @public
    def address():
        from flask import request

        return request.remote_addr

    with app.test_client() as client:
        response = client.get(
            "/adresse",
            headers={"X-Forwarded-For": "203.0.113.7"},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
    assert response.text == "203.0.113.7"
