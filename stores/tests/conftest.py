"""Real servers on loopback for the account and notification tests: an SMTP
server (aiosmtpd) that keeps what it receives, and an HTTP receiver for
webhooks that answers as told and keeps every request."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mail:
    to: list[str]
    subject: str
    body: str

    def link(self, pattern: str = r"https?://\S+") -> str:
        found = re.search(pattern, self.body)
        assert found, f"no link matching {pattern!r} in:\n{self.body}"
        return found.group(0)


class Mailbox:
    """What the SMTP server received, in order."""

    def __init__(self):
        self.mails: list[Mail] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",)).get_content()
        with self.lock:
            self.mails.append(Mail(list(envelope.rcpt_tos), str(message["subject"]), body))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.to]

    def wait_for(self, address: str, count: int = 1, timeout: float = 20) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.to(address)
            if len(mails) >= count:
                return mails
            time.sleep(0.05)
        pytest.fail(f"{address} got {len(self.to(address))} mails, expected {count}: "
                    f"{[m.subject for m in self.to(address)]}")


@pytest.fixture
def smtp(settings):
    """A real SMTP server on loopback, and Django sending to it over SMTP."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    mailbox.port = port
    mailbox.env = {"EMAIL_BACKEND": settings.EMAIL_BACKEND, "EMAIL_HOST": "127.0.0.1",
                   "EMAIL_PORT": str(port)}
    yield mailbox
    controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1. ``answers`` are the status codes of
    the next requests (200 once they run out)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        pytest.fail(f"the receiver got {len(self.requests)} requests, expected {count}: "
                    f"{[r.json.get('type') for r in self.requests]}")


@pytest.fixture
def receiver(settings):
    """A webhook receiver on loopback, and the test-only setting that lets
    endpoints point there (WEBHOOK_TEST_ALLOW_LOOPBACK; plain http too)."""
    settings.WEBHOOK_TEST_ALLOW_LOOPBACK = True
    settings.WEBHOOK_REQUIRE_HTTPS = False
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.requests.append(Received(self.path, {k.lower(): v for k, v in
                                                           self.headers.items()}, body))
                status = state.answers.pop(0) if state.answers else 200
            answer = f"answered {status}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    server.shutdown()
    server.server_close()
