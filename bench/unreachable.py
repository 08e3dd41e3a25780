"""How long a new store takes to fail when the cluster does not answer,
with the platform's default retry settings (STORE_TRANSIENT_RETRIES=4,
STORE_RETRY_BACKOFF=2), through a real worker.

    .venv/bin/python bench/unreachable.py

Four clusters that do not work, each named by a kubeconfig:

- refused:   nothing listens at the address (the cluster is down);
- silent:    the address takes no connection at all: its accept queue is
             full, so the kernel drops the handshake, as a host that is off
             or behind a firewall does (connect timeout: 3 s);
- hung:      the connection is taken but no answer comes (a hung API
             server; read timeout: 20 s);
- missing:   KUBECONFIG names a file that does not exist (not retried).

For each: seconds from the API's 202 to ``failed``, the reason, and the
timeline. docs/benchmarks.md records the figures; the README quotes them.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Stack

DEFAULTS = {"STORE_TRANSIENT_RETRIES": "4", "STORE_RETRY_BACKOFF": "2"}


def kubeconfig(path: Path, server: str) -> str:
    from provisioning.tests.fakes.kubeapi import kubeconfig as text

    path.write_text(text(server))
    return str(path)


def refused_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again: refused


def silent_address(keep: list) -> str:
    """A listening socket that never accepts, its queue filled: further
    connection attempts get no answer and time out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    keep.append(server)
    for _ in range(4):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        keep.append(client)
    time.sleep(0.2)
    return f"http://127.0.0.1:{port}"


def hung_address(keep: list) -> str:
    """Takes connections (the kernel does, for the backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    keep.append(server)
    return f"http://127.0.0.1:{server.getsockname()[1]}"


def time_to_fail(stack: Stack, name: str, limit: float = 400) -> tuple[float, object]:
    from stores.models import Store

    response = stack.api("POST", "/api/stores/", json={"name": name, "engine": "woocommerce"})
    response.raise_for_status()
    started = time.monotonic()
    store_id = response.json()["id"]
    while time.monotonic() - started < limit:
        store = Store.objects.get(pk=store_id)
        if store.status == "failed":
            return time.monotonic() - started, store
        time.sleep(0.2)
    raise SystemExit(f"{name} did not fail within {limit:.0f}s")


def main() -> None:
    keep: list = []
    with Stack(workers=0, web=True, env=DEFAULTS) as stack:
        configs = {
            "refused": kubeconfig(stack.workdir / "refused", refused_address()),
            "silent": kubeconfig(stack.workdir / "silent", silent_address(keep)),
            "hung": kubeconfig(stack.workdir / "hung", hung_address(keep)),
            "missing": str(stack.workdir / "no-such-kubeconfig"),
        }
        results = []
        for case, path in configs.items():
            worker = stack.start_worker(KUBECONFIG=path, **DEFAULTS)
            worker.wait_for_log(" ready.")
            seconds, store = time_to_fail(stack, f"Unreachable {case}")
            stack.stop_workers()
            results.append((case, seconds, store))
            print(f"\n{case}: failed after {seconds:.1f} s, reason {store.status_reason}: "
                  f"{store.status_message}")
            first = store.events.first().created_at
            for event in store.events.all():
                offset = (event.created_at - first).total_seconds()
                print(f"  +{offset:6.1f}s  {event.kind:8} {event.message}")
        print("\ncase     seconds  reason")
        for case, seconds, store in results:
            print(f"{case:8} {seconds:7.1f}  {store.status_reason}")
    for sock in keep:
        sock.close()


if __name__ == "__main__":
    main()
