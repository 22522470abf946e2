"""The shipped deployment files work: systemd accepts the units, nginx the server block.

The units and the nginx configuration in ``deploy/`` are copied into the test's folder with their
installation paths (``/opt/hpmail``, the certificate, the logs) pointed at the test's own, then
checked by the real tools: ``systemd-analyze verify`` and ``security``, ``nginx -t``, and nginx
started in front of a real gunicorn serving the test's application.
"""

from __future__ import annotations

import http.client
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from hpmail.auth.models import SignInAttempt
from hpmail.config import PROJECT_ROOT, Defaults
from tests.fixtures.smtp import free_port, make_ca

DEPLOY = PROJECT_ROOT / "deploy"
UNITS = ("hpmail-web.service", "hpmail-worker.service")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
)
VENV_BIN = Path(sys.executable).parent

needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is missing (Debian package systemd; .ci/system-deps installs it)",
)
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is missing (Debian package nginx; .ci/system-deps installs it)"
)


def unit_option(unit: Path, name: str) -> str:
    """Return the value of the last ``name=`` line of a unit file."""
    values = re.findall(rf"^{name}=(.*)$", unit.read_text(), flags=re.MULTILINE)
    assert values, f"{unit.name} has no {name}="
    return values[-1]


@pytest.fixture
def units(tmp_path) -> list[Path]:
    """The units, their programs taken from this virtualenv (verify needs them to exist)."""
    folder = tmp_path / "units"
    folder.mkdir()
    copies = []
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace("/opt/hpmail/.venv/bin/", f"{VENV_BIN}/")
        (folder / name).write_text(text)
        copies.append(folder / name)
    return copies


@needs_systemd_analyze
def test_systemd_accepts_the_web_and_worker_units_without_a_word(units):
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # systemd only warns about an unknown or misspelt setting (and still succeeds): any line
    # printed is a mistake in a unit.
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""


@needs_systemd_analyze
@pytest.mark.parametrize("name", UNITS)
def test_each_unit_is_rated_safe_by_systemds_security_review(units, name):
    unit = next(unit for unit in units if unit.name == name)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_the_units_stop_gracefully_run_as_hpmail_and_write_only_the_instance_folder():
    instance = re.search(
        r"^HPMAIL_INSTANCE_PATH=(.*)$", (DEPLOY / "hpmail.env.example").read_text(), re.M
    )
    for name in UNITS:
        unit = DEPLOY / name
        assert unit_option(unit, "User") == "hpmail"
        assert unit_option(unit, "KillSignal") == "SIGTERM"
        assert unit_option(unit, "KillMode") == "mixed"
        assert unit_option(unit, "Restart") == "on-failure"
        assert unit_option(unit, "ProtectSystem") == "strict"
        assert unit_option(unit, "NoNewPrivileges") == "yes"
        assert unit_option(unit, "ReadWritePaths") == instance.group(1)
        assert unit_option(unit, "EnvironmentFile") == "/etc/hpmail/hpmail.env"
    # The worker's stop waits out one SMTP exchange (the default transport timeout and more).
    worker_stop = int(unit_option(DEPLOY / "hpmail-worker.service", "TimeoutStopSec"))
    assert worker_stop > 2 * 30


def test_nginx_accepts_exactly_the_applications_upload_limit():
    conf = (DEPLOY / "nginx" / "hpmail.conf").read_text()
    limit = re.search(r"^\s*client_max_body_size (\d+)m;", conf, re.M)
    assert limit, "client_max_body_size is not set in megabytes"
    assert int(limit.group(1)) * 1024 * 1024 == Defaults.MAX_CONTENT_LENGTH


def test_the_worker_units_command_starts_a_consumer_that_systemds_stop_ends_in_time(app, tmp_path):
    command = shlex.split(unit_option(DEPLOY / "hpmail-worker.service", "ExecStart"))
    command[0] = str(VENV_BIN / "huey_consumer")
    env = {
        **os.environ,
        "HPMAIL_INSTANCE_PATH": app.instance_path,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "HPMAIL_SECRET_KEY": app.config["SECRET_KEY"],
        "HPMAIL_DEMO": "0",
    }
    env.pop("HPMAIL_QUEUE_URL", None)  # the SQLite queue file of the instance
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while "consumer started" not in log.read_text(errors="replace").lower():
                assert process.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.2)
            # What `systemctl stop` does: the unit's KillSignal, then a kill after TimeoutStopSec.
            process.send_signal(
                getattr(signal, unit_option(DEPLOY / "hpmail-worker.service", "KillSignal"))
            )
            stop = int(unit_option(DEPLOY / "hpmail-worker.service", "TimeoutStopSec"))
            process.wait(stop)  # systemd would kill it after this
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


# --- hpmail-flask: the commands as the services run ---------------------------------------------


@pytest.mark.skipif(
    not (PROJECT_ROOT / ".venv" / "bin" / "flask").exists(),
    reason="hpmail-flask runs <HPMAIL_HOME>/.venv/bin/flask, and this checkout has no .venv",
)
def test_hpmail_flask_migrates_and_checks_an_instance_with_the_shipped_settings(tmp_path):
    instance = tmp_path / "instance"
    settings = tmp_path / "hpmail.env"
    example = (DEPLOY / "hpmail.env.example").read_text()
    settings.write_text(example.replace("/var/lib/hpmail", str(instance)))
    env = {
        "PATH": os.environ["PATH"],
        "HPMAIL_HOME": str(PROJECT_ROOT),
        "HPMAIL_ENV": str(settings),
        "HPMAIL_USER": pwd.getpwuid(os.geteuid()).pw_name,
    }

    def hpmail_flask(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(DEPLOY / "hpmail-flask"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    upgraded = hpmail_flask("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    checked = hpmail_flask("doctor")
    lines = checked.stdout.splitlines()
    assert len(lines) == 8, checked.stdout + checked.stderr
    assert lines[0].startswith("OK        Base de données : joignable (sqlite:///" + str(instance))
    assert f"{instance} réservé à son propriétaire (700), fichiers en 600" in lines[6]
    # No worker ran and nothing was configured: a failure, as monitoring must see it.
    assert checked.returncode == 2
    assert "aucun worker en marche (aucun signe de vie enregistré)" in checked.stdout
    for name in ("secret_key", "fernet.key", "hpmail.sqlite3"):
        assert (instance / name).stat().st_mode & 0o777 == 0o600


# --- nginx ---------------------------------------------------------------------------------


class Nginx:
    """The shipped server block inside a minimal nginx.conf, every path in the test's folder."""

    def __init__(self, folder: Path, upstream_port: int) -> None:
        self.folder = folder
        self.https_port, self.http_port = free_port(), free_port()
        self.ca = make_ca(folder)  # the server's certificate (localhost, 127.0.0.1) and its CA
        for name in ("logs", "temp"):
            (folder / name).mkdir()
        server = (
            (DEPLOY / "nginx" / "hpmail.conf")
            .read_text()
            .replace("/etc/ssl/certs/hpmail.crt", self.ca.server_cert_file)
            .replace("/etc/ssl/private/hpmail.key", self.ca.server_key_file)
            .replace("/var/log/nginx/", f"{folder}/logs/")
            .replace("/opt/hpmail/", f"{PROJECT_ROOT}/")
            .replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
            .replace("listen 443 ", f"listen 127.0.0.1:{self.https_port} ")
            .replace("listen 80;", f"listen 127.0.0.1:{self.http_port};")
        )
        server = re.sub(r"^\s*listen \[::\]:.*$", "", server, flags=re.M)  # no IPv6 in CI
        (folder / "hpmail.conf").write_text(server)
        mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
        # As root, nginx's workers would drop to "nobody", who cannot read the test's folder.
        user = "user root;" if os.geteuid() == 0 else ""
        temp = folder / "temp"
        self.conf = folder / "nginx.conf"
        self.conf.write_text(
            f"""{user}
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    {mime}
    access_log {folder}/logs/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {folder}/hpmail.conf;
}}
"""
        )
        self.process: subprocess.Popen | None = None

    def command(self, *args: str) -> list[str]:
        # -e: nginx opens its error log before it reads the configuration.
        error_log = str(self.folder / "logs" / "error.log")
        return [NGINX, "-p", str(self.folder), "-e", error_log, "-c", str(self.conf), *args]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for_port(self.https_port, self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the process exited: {process.stderr.read()!r}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


@needs_nginx
def test_nginx_accepts_the_shipped_server_block(tmp_path):
    nginx = Nginx(tmp_path, upstream_port=free_port())
    result = subprocess.run(nginx.command("-t"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# --- nginx in front of the application --------------------------------------------------------


@pytest.fixture
def gunicorn(app, tmp_path):
    """The web unit's own gunicorn command, on a free port, serving the test's database."""
    port = free_port()
    command = shlex.split(unit_option(DEPLOY / "hpmail-web.service", "ExecStart"))
    command[0] = str(VENV_BIN / "gunicorn")
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    command[command.index("--workers") + 1] = "1"
    env = {
        **os.environ,
        "HPMAIL_INSTANCE_PATH": app.instance_path,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "HPMAIL_SECRET_KEY": app.config["SECRET_KEY"],
        "HPMAIL_DEMO": "0",
        "HPMAIL_QUEUE_URL": "memory",
        "HPMAIL_PASSWORD_HASH_METHOD": app.config["PASSWORD_HASH_METHOD"],
        # deploy/hpmail.env.example's web settings
        "HPMAIL_PROXY_COUNT": "1",
        "HPMAIL_SESSION_COOKIE_SECURE": "1",
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process)
        yield port
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick stop: the test is over
        process.wait(30)
        log.close()


def started_nginx(folder: Path, upstream_port: int):
    folder.mkdir()
    server = Nginx(folder, upstream_port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nginx(tmp_path, gunicorn):
    """nginx in front of the application."""
    yield from started_nginx(tmp_path / "nginx", gunicorn)


@pytest.fixture
def nginx_alone(tmp_path):
    """nginx with no application behind: what it answers by itself."""
    yield from started_nginx(tmp_path / "nginx", free_port())


def request(
    nginx: Nginx, method: str, path: str, body=None, headers=None, source: str = "127.0.0.1"
) -> tuple[http.client.HTTPResponse, bytes]:
    context = ssl.create_default_context(cafile=nginx.ca.ca_file)
    connection = http.client.HTTPSConnection(
        "localhost", nginx.https_port, context=context, source_address=(source, 0), timeout=60
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


@needs_nginx
def test_nginx_serves_the_static_files_itself_with_an_hour_of_cache(nginx_alone):
    response, body = request(nginx_alone, "GET", "/static/app.css")
    assert response.status == 200
    assert body == (PROJECT_ROOT / "static" / "app.css").read_bytes()
    assert response.getheader("Cache-Control") == "max-age=3600"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.headers.get_all("Strict-Transport-Security") == ["max-age=31536000"]


@needs_nginx
def test_the_application_behind_nginx_knows_it_is_on_https_and_says_hsts_once(nginx):
    response, _body = request(nginx, "GET", "/")
    assert response.status == 302
    assert response.getheader("Location").startswith("/connexion")
    assert response.headers.get_all("Strict-Transport-Security") == ["max-age=31536000"]
    response, _body = request(nginx, "GET", "/connexion")
    assert response.status == 200
    assert "Secure" in response.getheader("Set-Cookie")


@needs_nginx
def test_plain_http_is_sent_to_https(nginx_alone):
    connection = http.client.HTTPConnection("127.0.0.1", nginx_alone.http_port, timeout=30)
    connection.request("GET", "/connexion", headers={"Host": "hpmail.lycee-exemple.fr"})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == "https://hpmail.lycee-exemple.fr/connexion"
    connection.close()


@needs_nginx
def test_the_sign_in_throttle_counts_the_real_client_address_never_a_forged_one(nginx, db):
    response, body = request(nginx, "GET", "/connexion", source="127.0.0.2")
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body).group(1).decode()
    form = f"csrf_token={token}&login=nobody&password=wrong-password"
    response, body = request(
        nginx,
        "POST",
        "/connexion",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie,
            "X-Forwarded-For": "203.0.113.9",
            "Referer": f"https://localhost:{nginx.https_port}/connexion",
        },
        source="127.0.0.2",
    )
    assert response.status == 401, body[:500]
    db.session.expire_all()
    addresses = db.session.scalars(select(SignInAttempt.remote_addr)).all()
    # gunicorn saw nginx (127.0.0.1); the application counted the client nginx saw.
    assert addresses == ["127.0.0.2"]


@needs_nginx
def test_an_upload_over_the_limit_is_refused_by_nginx_with_a_french_page(nginx_alone):
    too_big = b"x" * (Defaults.MAX_CONTENT_LENGTH + 1024)
    response, body = request(
        nginx_alone,
        "POST",
        "/e-mail/nouveau",
        body=too_big,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status == 413
    assert "25 Mo au plus par envoi" in body.decode()
