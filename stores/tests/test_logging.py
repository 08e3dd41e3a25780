"""Structured logs carry the store, the operation and the task id."""

import io
import json
import logging

import pytest

from storeplatform.logging import ContextFilter, JsonFormatter

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_worker_log_lines_carry_store_operation_and_task(api, cluster, eager, json_log):
    with eager():
        store_id = api.post("/api/stores/", {"name": "Logged", "engine": "woocommerce"},
                            format="json").json()["id"]
    lines = [line for line in json_log() if line["logger"] == "stores.transitions"]
    ready = next(line for line in lines if line.get("status") == "ready")
    assert ready["store"] == store_id
    assert ready["operation"] == "provision"
    assert ready["task_id"]
    assert ready["message"] == f"store={store_id} status provisioning -> ready reason=-"


def test_failure_lines_use_the_event_reason_strings(api, cluster, eager, json_log):
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    with eager():
        api.post("/api/stores/", {"name": "Logged", "engine": "woocommerce"}, format="json")
    failed = next(line for line in json_log() if line.get("status") == "failed")
    assert failed["reason"] == "helm_failed"
