"""The deploy scripts, the Dockerfile and the e2e workflow, checked offline.

No Docker engine or cluster runs here, so deploy/e2e-cluster.sh itself cannot
run. What can: every shell script is linted and parsed, the Dockerfile is
read for its promises (pinned base, non-root user, no baked secrets), and the
API and storefront halves of the e2e run (api-smoke.sh, place-order.sh) are
driven for real against small fake servers on loopback that answer like the
platform API, the WooCommerce Store API and the Medusa Store API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHELLCHECK = ROOT / ".venv" / "bin" / "shellcheck"
SCRIPTS = sorted(
    p for folder in ("deploy", "scripts") for p in (ROOT / folder).rglob("*.sh") if p.is_file()
)
ENTRY_SCRIPTS = [p for p in SCRIPTS if p.parent.name != "lib"]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- shell scripts -----------------------------------------------------------


def test_there_are_scripts_to_check():
    names = {rel(p) for p in SCRIPTS}
    assert {
        "deploy/k3d-up.sh",
        "deploy/e2e-cluster.sh",
        "deploy/api-smoke.sh",
        "deploy/place-order.sh",
    } <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=rel)
def test_every_shell_script_is_shellcheck_clean(script):
    proc = subprocess.run(
        [str(SHELLCHECK), "--external-sources", rel(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=rel)
def test_every_shell_script_parses(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", ENTRY_SCRIPTS, ids=rel)
def test_every_entry_script_is_executable_and_strict(script):
    assert os.access(script, os.X_OK), f"{rel(script)} is not executable"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


# --- Dockerfile --------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_dockerfile_pins_every_base_image():
    instructions = dockerfile_instructions()
    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args.setdefault(name, value)
    stages = set()
    bases = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            if image not in stages:
                bases.append(image)
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
    assert bases, "no FROM in the Dockerfile"
    for image in bases:
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag and tag != "latest", f"base image {image} is not pinned"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"base image {image}: pin an exact version"
    assert all(image.startswith("python:3.11.") for image in bases)


def test_the_image_runs_as_a_non_root_user():
    instructions = dockerfile_instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    users = [rest for k, rest in instructions[last_from:] if k == "USER"]
    assert users, "the final stage never switches USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == "10001"


def test_the_image_bakes_no_secrets_and_starts_the_web_process():
    instructions = dockerfile_instructions()
    for keyword, rest in instructions:
        if keyword in {"ENV", "ARG"}:
            assert not re.search(r"(SECRET|PASSWORD|TOKEN)\w*=", rest), f"{keyword} {rest}"
    cmd = [json.loads(rest) for k, rest in instructions if k == "CMD"][-1]
    assert cmd[:2] == ["gunicorn", "storeplatform.wsgi:application"]
    assert "0.0.0.0:8000" in cmd
    text = (ROOT / "Dockerfile").read_text()
    assert "collectstatic --noinput" in text
    assert "/usr/local/bin/" in text and "helm" in text and "kubectl" in text


def test_the_build_context_leaves_out_local_and_secret_files():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".tools", ".env", "node_modules"} <= ignored


# --- workflow ----------------------------------------------------------------


def test_the_e2e_workflow_runs_the_e2e_script_with_its_tools():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e-cluster.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert job["runs-on"].startswith("ubuntu")
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "scripts/install-tools.sh" in runs  # helm and kubectl
    assert "k3d" in runs and "sha256sum --check" in runs
    assert "deploy/e2e-cluster.sh" in runs


def test_the_e2e_script_uses_files_that_exist():
    text = (ROOT / "deploy" / "e2e-cluster.sh").read_text()
    for path in re.findall(r"\$ROOT/([\w./-]+)", text):
        if "$" not in path and not path.startswith(".run/"):
            assert (ROOT / path).exists(), f"e2e-cluster.sh refers to missing {path}"
    for path in re.findall(r"\$DEPLOY_DIR/([\w./-]+)", text):
        assert (ROOT / "deploy" / path).exists(), f"e2e-cluster.sh refers to missing {path}"


def e2e_shell_snippets() -> list[str]:
    """The Python e2e-cluster.sh runs with ``manage_shell "<code>" ...``."""
    text = (ROOT / "deploy" / "e2e-cluster.sh").read_text()
    return re.findall(r'manage_shell "\n(.*?)\n"', text, re.DOTALL)


def run_snippet(code: str, capsys, **env: str) -> str:
    # Inside bash's double quotes: nothing in it may be expanded by the shell.
    assert not set(code) & {"$", "`", "\\", '"'}, code
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        exec(compile(code, "e2e-cluster.sh", "exec"), {})
    return capsys.readouterr().out.strip()


@pytest.mark.django_db
def test_the_e2e_scripts_python_runs_against_our_models(capsys, django_user_model):
    """The e2e script cannot run here (no Docker, no cluster); the Python it
    runs in the platform's pod can, against the real models."""
    make_user, set_size, pool_full = e2e_shell_snippets()
    from stores import constants as c
    from stores.models import PoolPolicy, Store

    run_snippet(make_user, capsys, E2E_USER="e2e-admin", E2E_PASSWORD="pw-1234-abcd")
    assert django_user_model.objects.get(username="e2e-admin").check_password("pw-1234-abcd")

    run_snippet(set_size, capsys, ENGINES="woocommerce medusa", SIZE="1")
    assert dict(PoolPolicy.objects.values_list("engine", "size")) == {"woocommerce": 1,
                                                                       "medusa": 1}
    assert run_snippet(pool_full, capsys, ENGINES="woocommerce medusa") == "no"
    for engine in ("woocommerce", "medusa"):
        Store.objects.create(name="Pooled", slug=f"pooled-{engine}", engine=engine,
                             host=f"pooled-{engine}.localtest.me", status=c.POOLED)
    assert run_snippet(pool_full, capsys, ENGINES="woocommerce medusa") == "yes"
    run_snippet(set_size, capsys, ENGINES="woocommerce medusa", SIZE="0")
    assert set(PoolPolicy.objects.values_list("size", flat=True)) == {0}


# --- a fake platform API and fake storefronts on loopback --------------------


class FakeShop:
    """State behind the fake servers; every request is recorded."""

    def __init__(self, statuses=("requested", "provisioning", "ready"), delete_to=("deleting",)):
        self.statuses = list(statuses)
        self.delete_to = list(delete_to)
        self.requests: list[tuple[str, str, dict | None]] = []
        self.deleted = False
        self.unavailable_polls = 0  # answer this many store polls with 503
        self.base_url = ""
        self.created_status = "requested"  # "claiming": taken from the warm pool
        self.accepted_at = 0.0  # when the create was answered
        self.ready_after = 2.5  # ready_at is this many seconds after it


class Handler(BaseHTTPRequestHandler):
    fake_shop: FakeShop

    def log_message(self, *args):  # keep pytest output clean
        pass

    def reply(self, status: int, body, headers: dict | None = None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        url = urlparse(self.path)
        body = self.body()
        self.fake_shop.requests.append((method, url.path, body))
        if url.path.startswith("/api/"):
            return self.platform(method, url.path, body)
        if url.path.startswith(("/wp-json/", "/storefront/", "/store/")):
            return self.storefront(method, url.path, parse_qs(url.query), body)
        return self.reply(404, {"detail": "not found"})

    # The platform API (DRF token auth).
    def platform(self, method, path, body):
        fake_shop = self.fake_shop
        if path == "/api/auth/token/":
            if body == {"username": "admin", "password": "right"}:
                return self.reply(200, {"token": "tok123"})
            return self.reply(400, {"non_field_errors": ["Unable to log in."]})
        if self.headers.get("Authorization") != "Token tok123":
            return self.reply(401, {"detail": "Authentication credentials were not provided."})
        if method == "POST" and path == "/api/stores/":
            assert set(body) == {"name", "engine"}
            fake_shop.accepted_at = time.time()
            return self.reply(202, {"id": "k3x9q2m1ab", "status": fake_shop.created_status,
                                    **body})
        if path == "/api/stores/k3x9q2m1ab/credentials/":
            return self.reply(
                200,
                {
                    "admin_url": f"{fake_shop.base_url}/app",
                    "username": "admin",
                    "email": "admin@example.com",
                    "password": "s3cr3t-value",
                },
            )
        if path == "/api/stores/k3x9q2m1ab/":
            if method == "GET" and fake_shop.unavailable_polls:
                fake_shop.unavailable_polls -= 1
                return self.reply(503, {"detail": "no healthy upstream"})
            if method == "DELETE":
                fake_shop.deleted = True
                return self.reply(202, {"id": "k3x9q2m1ab", "status": "deleting"})
            if fake_shop.deleted:
                if not fake_shop.delete_to:
                    return self.reply(404, {"detail": "Not found."})
                status = fake_shop.delete_to.pop(0)
            else:
                status = (
                    fake_shop.statuses.pop(0)
                    if len(fake_shop.statuses) > 1
                    else fake_shop.statuses[0]
                )
            return self.reply(
                200,
                {
                    "id": "k3x9q2m1ab",
                    "status": status,
                    "status_reason": "chart_error" if status == "failed" else "",
                    "status_message": "helm said no" if status == "failed" else "",
                    "storefront_url": fake_shop.base_url,
                    "ready_at": datetime.fromtimestamp(
                        fake_shop.accepted_at + fake_shop.ready_after, UTC).isoformat()
                    if status == "ready" else None,
                },
            )
        return self.reply(404, {"detail": "Not found."})

    # WooCommerce Store API and Medusa Store API, the calls place-order.sh makes.
    def storefront(self, method, path, query, body):
        woo = "/wp-json/wc/store/v1"
        if path == f"{woo}/products":
            return self.reply(200, [{"id": 41, "is_purchasable": False}, {"id": 42}])
        if path == f"{woo}/cart":
            return self.reply(200, {"items": []}, {"Nonce": "n0nce", "Cart-Token": "ct0ken"})
        if path.startswith(f"{woo}/") and method == "POST":
            if (self.headers.get("Nonce"), self.headers.get("Cart-Token")) != ("n0nce", "ct0ken"):
                return self.reply(401, {"code": "woocommerce_rest_missing_nonce"})
            if path == f"{woo}/cart/add-item":
                return self.reply(201, {"items": [{"id": body["id"]}]})
            if path == f"{woo}/checkout" and body["payment_method"] == "cod":
                return self.reply(
                    200,
                    {
                        "order_id": 7,
                        "status": "processing",
                        "payment_result": {"payment_status": "success"},
                    },
                )
        if path == "/storefront/config":
            return self.reply(200, {"publishable_key": "pk_test"})
        if path.startswith("/store/"):
            if self.headers.get("x-publishable-api-key") != "pk_test":
                return self.reply(400, {"message": "Publishable API key required"})
            return self.medusa(method, path, query, body)
        return self.reply(404, {"message": "not found"})

    def medusa(self, method, path, query, body):
        if path == "/store/regions":
            return self.reply(200, {"regions": [{"id": "reg_1", "countries": [{"iso_2": "dk"}]}]})
        if path == "/store/products":
            assert query["region_id"] == ["reg_1"]
            products = [{"id": "prod_1", "variants": [{"id": "variant_1"}]}]
            return self.reply(200, {"products": products})
        if path == "/store/carts" and method == "POST":
            return self.reply(200, {"cart": {"id": "cart_1"}})
        if path == "/store/carts/cart_1/line-items":
            assert body == {"variant_id": "variant_1", "quantity": 1}
            return self.reply(200, {"cart": {"id": "cart_1"}})
        if path == "/store/carts/cart_1" and method == "POST":
            assert body["shipping_address"]["country_code"] == "dk"
            return self.reply(200, {"cart": {"id": "cart_1"}})
        if path == "/store/shipping-options":
            assert query["cart_id"] == ["cart_1"]
            return self.reply(200, {"shipping_options": [{"id": "so_1"}]})
        if path == "/store/carts/cart_1/shipping-methods":
            assert body == {"option_id": "so_1"}
            return self.reply(200, {"cart": {"id": "cart_1"}})
        if path == "/store/payment-collections":
            assert body == {"cart_id": "cart_1"}
            return self.reply(200, {"payment_collection": {"id": "paycol_1"}})
        if path == "/store/payment-collections/paycol_1/payment-sessions":
            assert body == {"provider_id": "pp_system_default"}
            return self.reply(200, {"payment_collection": {"id": "paycol_1"}})
        if path == "/store/carts/cart_1/complete":
            return self.reply(200, {"type": "order", "order": {"id": "order_1", "display_id": 1}})
        return self.reply(404, {"message": "not found"})


@pytest.fixture
def fake_shop():
    state = FakeShop()
    handler = type("BoundHandler", (Handler,), {"fake_shop": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def run_script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "POLL_INTERVAL": "0.05",
        "READY_TIMEOUT": "10",
        "DELETE_TIMEOUT": "10",
        **env,
    }
    return subprocess.run(
        ["bash", str(ROOT / "deploy" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )


def paths(fake_shop: FakeShop) -> list[str]:
    return [f"{method} {path}" for method, path, _ in fake_shop.requests]


def test_api_smoke_drives_a_store_from_creation_to_deletion(fake_shop):
    proc = run_script("api-smoke.sh", fake_shop.base_url, "admin", "right", "medusa")
    assert proc.returncode == 0, proc.stderr
    seen = paths(fake_shop)
    assert seen[:2] == ["POST /api/auth/token/", "POST /api/stores/"]
    assert seen.count("GET /api/stores/k3x9q2m1ab/credentials/") == 1
    assert seen.index("DELETE /api/stores/k3x9q2m1ab/") > seen.index(
        "GET /api/stores/k3x9q2m1ab/credentials/"
    )
    assert seen[-1] == "GET /api/stores/k3x9q2m1ab/"  # the poll that saw 404
    assert fake_shop.requests[1][2]["engine"] == "medusa"
    assert "is ready" in proc.stderr and "is deleted: OK" in proc.stderr
    assert "password" in proc.stderr  # key names are shown ...
    assert "s3cr3t-value" not in proc.stdout + proc.stderr  # ... values never


def test_api_smoke_prints_the_time_from_the_202_to_ready_of_a_store_built_cold(fake_shop):
    proc = run_script("api-smoke.sh", fake_shop.base_url, "admin", "right", "woocommerce")
    assert proc.returncode == 0, proc.stderr
    # ready_at less the script's own time of the 202 (taken just after it).
    assert re.search(r"timing: woocommerce store k3x9q2m1ab, built cold: ready 2\.[345]s "
                     r"after its 202", proc.stderr), proc.stderr


def test_api_smoke_says_when_the_store_was_claimed_from_the_warm_pool(fake_shop):
    fake_shop.statuses = ["claiming", "ready"]
    fake_shop.created_status, fake_shop.ready_after = "claiming", 7.0
    proc = run_script("api-smoke.sh", fake_shop.base_url, "admin", "right", "medusa",
                      EXPECT_CLAIM="1")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"timing: medusa store k3x9q2m1ab, claimed from the warm pool: ready "
                     r"(6\.[89]|7\.0)s after its 202", proc.stderr), proc.stderr


def test_api_smoke_with_expect_claim_fails_a_create_built_cold_and_deletes_it(fake_shop):
    proc = run_script("api-smoke.sh", fake_shop.base_url, "admin", "right", "medusa",
                      EXPECT_CLAIM="1")
    assert proc.returncode != 0
    assert "was not claimed from the warm pool (status requested)" in proc.stderr
    assert "DELETE /api/stores/k3x9q2m1ab/" in paths(fake_shop)


def test_api_smoke_takes_its_arguments_from_the_environment(fake_shop):
    proc = run_script(
        "api-smoke.sh",
        BASE_URL=fake_shop.base_url,
        USERNAME="admin",
        PASSWORD="wrong",
        ENGINE="woocommerce",
    )
    assert proc.returncode != 0
    assert paths(fake_shop) == ["POST /api/auth/token/"]
    assert fake_shop.requests[0][2] == {"username": "admin", "password": "wrong"}


def test_api_smoke_rides_out_a_platform_restart_while_polling(fake_shop):
    fake_shop.unavailable_polls = 2
    proc = run_script("api-smoke.sh", fake_shop.base_url, "admin", "right", "woocommerce")
    assert proc.returncode == 0, proc.stderr


def test_api_smoke_fails_clearly_on_wrong_credentials(fake_shop):
    proc = run_script("api-smoke.sh", fake_shop.base_url, "admin", "wrong", "medusa")
    assert proc.returncode != 0
    assert "POST /api/auth/token/" in proc.stderr and "got 400" in proc.stderr


def test_api_smoke_reports_a_failed_store_and_still_deletes_it(fake_shop):
    fake_shop.statuses = ["requested", "provisioning", "failed"]
    proc = run_script("api-smoke.sh", fake_shop.base_url, "admin", "right", "medusa")
    assert proc.returncode != 0
    assert "became failed" in proc.stderr and "chart_error" in proc.stderr
    assert "helm said no" in proc.stderr
    assert "DELETE /api/stores/k3x9q2m1ab/" in paths(fake_shop)


def test_api_smoke_gives_up_after_its_ready_timeout(fake_shop):
    fake_shop.statuses = ["provisioning"]
    proc = run_script(
        "api-smoke.sh", fake_shop.base_url, "admin", "right", "medusa", READY_TIMEOUT="1"
    )
    assert proc.returncode != 0
    assert "still 'provisioning' after 1s (READY_TIMEOUT)" in proc.stderr
    assert "DELETE /api/stores/k3x9q2m1ab/" in paths(fake_shop)


def test_api_smoke_gives_up_when_deletion_never_finishes(fake_shop):
    fake_shop.delete_to = ["deleting"] * 10_000
    proc = run_script(
        "api-smoke.sh", fake_shop.base_url, "admin", "right", "medusa", DELETE_TIMEOUT="1"
    )
    assert proc.returncode != 0
    assert "(DELETE_TIMEOUT)" in proc.stderr


def test_api_smoke_fails_clearly_when_nothing_listens():
    proc = run_script("api-smoke.sh", "http://127.0.0.1:9", "admin", "right", "medusa")
    assert proc.returncode != 0
    assert "is the platform up at http://127.0.0.1:9" in proc.stderr


def test_api_smoke_needs_all_four_arguments():
    proc = run_script("api-smoke.sh", "http://127.0.0.1:9", BASE_URL="", ENGINE="")
    assert proc.returncode != 0 and "usage:" in proc.stderr


def test_place_order_checks_out_a_woocommerce_cart_with_cash_on_delivery(fake_shop):
    proc = run_script("place-order.sh", "woocommerce", fake_shop.base_url)
    assert proc.returncode == 0, proc.stderr
    checkout = [b for m, p, b in fake_shop.requests if p.endswith("/checkout")]
    assert checkout[0]["payment_method"] == "cod"
    added = [b for m, p, b in fake_shop.requests if p.endswith("/cart/add-item")]
    assert added == [{"id": 42, "quantity": 1}]  # the purchasable product
    assert "order 7 placed" in proc.stderr


def test_api_smoke_places_a_medusa_order_through_its_hook_before_deleting(fake_shop):
    hook = f'"{ROOT}/deploy/place-order.sh" "$ENGINE" "$STOREFRONT_URL"'
    proc = run_script("api-smoke.sh", fake_shop.base_url, "admin", "right", "medusa", ON_READY=hook)
    assert proc.returncode == 0, proc.stderr
    seen = paths(fake_shop)
    # The whole Medusa checkout, between "ready" and the deletion.
    start = seen.index("GET /api/stores/k3x9q2m1ab/credentials/") + 1
    end = seen.index("DELETE /api/stores/k3x9q2m1ab/")
    assert seen[start:end] == [
        "GET /storefront/config",
        "GET /store/regions",
        "GET /store/products",
        "POST /store/carts",
        "POST /store/carts/cart_1/line-items",
        "POST /store/carts/cart_1",
        "GET /store/shipping-options",
        "POST /store/carts/cart_1/shipping-methods",
        "POST /store/payment-collections",
        "POST /store/payment-collections/paycol_1/payment-sessions",
        "POST /store/carts/cart_1/complete",
    ]
    assert "medusa: order 1 placed" in proc.stderr
