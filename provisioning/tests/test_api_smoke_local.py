"""The API half of the end-to-end cluster script (deploy/api-smoke.sh),
run for real against the local stack: live web server, real Celery worker,
fake cluster. What it cannot do here is place an order in a real shop."""

import os
import re
import subprocess

import pytest

from stores import constants as c
from stores.models import Store

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
def test_the_smoke_script_drives_a_store_through_its_life(engine, live_server, user, worker,
                                                          cluster):
    env = {**os.environ, "POLL_INTERVAL": "0.5", "READY_TIMEOUT": "90", "DELETE_TIMEOUT": "60",
           "STORE_NAME": f"Smoke {engine}"}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "deploy", "api-smoke.sh"), live_server.url, "alice",
         "alice-password-1", engine],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{worker.log()[-2000:]}"
    # Its time from the 202 to Ready, from the store's real ready_at.
    timing = re.search(rf"timing: {engine} store \w+, built cold: ready (\d+\.\d)s after its 202",
                       proc.stderr)
    assert timing and 0 < float(timing[1]) < 90, proc.stderr
    store = Store.objects.get(name=f"Smoke {engine}")
    assert store.status == c.DELETED
    assert cluster.managed_namespaces() == []
