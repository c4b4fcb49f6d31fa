"""`newsletter serve` behind a real nginx on loopback: with `proxy_hops` set, visitors keep their own
address (rate limit, consent hash) and https (HSTS); without it, forged headers change nothing.

nginx takes each simulated visitor's address from `X-Test-Client` (realip module, test config only),
then forwards as in production: `X-Forwarded-For: $proxy_add_x_forwarded_for`, `X-Forwarded-Proto`.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from newsletter.catcher import SMTPCatcher, free_port
from newsletter.context import Newsletter
from subscribers.flows import Flows
from subscribers.store import find

from .conftest import REPO, make_config

pytestmark = pytest.mark.process  # `newsletter serve` twice, and nginx
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
HSTS = "Strict-Transport-Security"
SECRET = secrets.token_urlsafe(32)
NGINX_CONF = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Test-Client;
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""


class Client:
    """One visitor: its own session cookie and CSRF token, reaching `port` from `source`."""

    def __init__(self, port: int, *, source: str = "127.0.0.1", **headers: str) -> None:
        self.port, self.source, self.headers, self.cookie = port, source, headers, ""

    def request(self, method: str, path: str, body: str = "") -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5,
                                                source_address=(self.source, 0))
        headers = {**self.headers, "Cookie": self.cookie}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.text = response.read().decode("utf-8")  # type: ignore[attr-defined]
        connection.close()
        return response

    def signup(self, email: str) -> int:
        if not self.cookie:
            page = self.request("GET", "/subscribe")
            self.cookie = page.headers["Set-Cookie"].split(";", 1)[0]
            match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)  # type: ignore[attr-defined]
            assert match, page.text  # type: ignore[attr-defined]
            self.token = match.group(1)
        form = urlencode({"csrf_token": self.token, "email": email, "name": "", "topics_mode": "all"})
        return self.request("POST", "/subscribe", form).status


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Site:
    nl: Newsletter
    proxy_port: int | None  # nginx, in front of app_port; None without nginx
    app_port: int  # `newsletter serve` with proxy_hops = 1
    plain_port: int  # `newsletter serve` with proxy_hops = 0


def serve(nl: Newsletter, folder: Path, port: int, proxy_hops: int) -> subprocess.Popen[bytes]:
    """`newsletter serve` as in production, in its own process."""
    c = nl.config
    env = {**os.environ, "NEWSLETTER_CONFIG": "/nonexistent.toml", "PYTHONPATH": str(REPO),
           "NEWSLETTER_DATABASE_URL": c.database_url, "NEWSLETTER_SECRET_KEY": SECRET,
           "NEWSLETTER_BASE_URL": c.base_url, "NEWSLETTER_FROM": c.from_,
           "NEWSLETTER_SMTP_HOST": c.smtp_host, "NEWSLETTER_SMTP_PORT": str(c.smtp_port),
           "NEWSLETTER_SMTP_SECURITY": "none", "NEWSLETTER_PROXY_HOPS": str(proxy_hops)}
    with (folder / f"serve-{port}.log").open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
                                env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Both servers start at once (their imports take seconds), sharing one SQLite store."""
    folder = tmp_path_factory.mktemp("proxy")
    with SMTPCatcher() as smtp:
        nl = Newsletter.open(make_config(f"sqlite:///{folder / 'newsletter.db'}", secret_key=SECRET,
                                         smtp_host=smtp.host, smtp_port=smtp.port))
        nl.init()
        ports = {1: free_port(), 0: free_port()}
        processes = {port: serve(nl, folder, port, hops) for hops, port in ports.items()}
        proxy_port = None
        try:
            for port, process in processes.items():
                wait_until_listening(port, process, folder / f"serve-{port}.log")
            if NGINX is not None:
                proxy_port, conf, log = free_port(), folder / "nginx.conf", folder / "nginx-error.log"
                conf.write_text(NGINX_CONF.format(tmp=folder, port=proxy_port, app_port=ports[1]),
                                encoding="utf-8")
                log.touch()
                processes[proxy_port] = subprocess.Popen(
                    [NGINX, "-p", str(folder), "-c", str(conf), "-e", str(log)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                wait_until_listening(proxy_port, processes[proxy_port], log)
            yield Site(nl, proxy_port, ports[1], ports[0])
        finally:
            for process in processes.values():
                stop(process)
            nl.close()


def consent_hash(nl: Newsletter, email: str) -> str | None:
    """The signup's consent hash, once its deferred work has recorded it."""
    deadline = time.monotonic() + 5
    while True:
        with nl.session() as session:
            subscriber = find(session, email)
            if subscriber is not None:
                return subscriber.consent_ip_hash
        assert time.monotonic() < deadline, f"no record of {email}"
        time.sleep(0.05)


def test_visitors_behind_the_proxy_keep_their_own_address_and_https(site: Site) -> None:
    if site.proxy_port is None:
        pytest.skip("needs nginx (Debian: apt-get install nginx-light); .ci/run installs it")
    nl, port = site.nl, site.proxy_port
    ann = Client(port, **{"X-Test-Client": "203.0.113.1", "X-Forwarded-For": "198.51.100.66"})
    bob = Client(port, **{"X-Test-Client": "203.0.113.2"})
    assert [ann.signup(f"ann{n}@example.org") for n in range(10)] == [303] * 10
    assert ann.signup("ann10@example.org") == 429  # ann's own limit (10 an hour)…
    assert bob.signup("bob@example.org") == 303  # …is not bob's
    ip_hash = Flows(nl).ip_hash
    assert consent_hash(nl, "bob@example.org") == ip_hash("203.0.113.2") != ip_hash("127.0.0.1")
    # one trusted hop: what ann wrote in X-Forwarded-For herself is not believed
    assert consent_hash(nl, "ann0@example.org") == ip_hash("203.0.113.1")
    assert bob.request("GET", "/subscribe").headers[HSTS] == "max-age=31536000"

    # Straight to the app from another address: forged headers are not believed.
    eve = Client(site.app_port, source="127.0.0.2",
                 **{"X-Forwarded-For": "203.0.113.2", "X-Forwarded-Proto": "https"})
    assert eve.signup("eve@example.org") == 303
    assert consent_hash(nl, "eve@example.org") == ip_hash("127.0.0.2")
    assert HSTS not in eve.request("GET", "/subscribe").headers


def test_without_proxy_hops_forged_forwarding_headers_change_nothing(site: Site) -> None:
    eve = Client(site.plain_port, **{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert eve.signup("mallory@example.org") == 303
    assert consent_hash(site.nl, "mallory@example.org") == Flows(site.nl).ip_hash("127.0.0.1")
    assert HSTS not in eve.request("GET", "/subscribe").headers
