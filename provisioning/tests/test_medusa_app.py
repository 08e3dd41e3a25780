"""The Medusa store app, for real: installed natively, set up and shopped in.

The container cannot run here (no Docker engine, no cluster), so this test
does what the image and the chart do, with the same pieces:

- scripts/setup-medusa-app.sh installs the app from images/medusa with Node
  20 (``npm ci`` + ``medusa build``) into .medusa/server, the image's /app;
- real PostgreSQL 16 and Redis 6.2 run as child processes
  (storeplatform.devservices), with an unprivileged ``medusa`` role owning
  the ``medusa`` database, as the chart's PostgreSQL init script creates it;
- the environment is the one the chart renders for the setup init container
  and the server (taken from ``helm template``, secrets filled in, service
  host names pointed at loopback);
- bin/setup.sh and ``medusa start`` run from .medusa/server, as the
  container's command lines do.

Then a shopper orders through the Store API and through the storefront in
Chromium, the admin finds both orders, and a second setup run changes
nothing. Everything is started once per module and stopped even on failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from provisioning.tests.chartkit import DEPLOY_VALUES, ROOT, render
from storeplatform import devservices

pytestmark = pytest.mark.slow

APP_DIR = ROOT / "images" / "medusa"
SERVER_DIR = APP_DIR / ".medusa" / "server"
SETUP_APP = ROOT / "scripts" / "setup-medusa-app.sh"
STORE_VALUES = Path(__file__).parent / "fixtures" / "medusa" / "store-values.yaml"
ON_CI = os.environ.get("CI", "").lower() == "true"

# What the platform puts in the store's Secret (docs/chart-contract.md).
SECRET = {
    "admin-username": "admin",
    "admin-email": "owner@acme-shop.test",
    "admin-password": "Admin-pass-7f3k2",
    "db-password": "Db-pass_9x2Lq",
    "db-root-password": "Root-pass_1a2b3",
    "jwt-secret": "jwt-secret-for-the-native-test",
    "cookie-secret": "cookie-secret-for-the-native-test",
}
RELEASE = "store-test"
CHART_URL = "http://acme-shop.localtest.me"


def missing(what: str) -> None:
    """A missing tool fails on CI (it must be installed there) and skips elsewhere."""
    if ON_CI:
        pytest.fail(f"{what} (CI=true requires it)")
    pytest.skip(what)


@dataclass
class MedusaApp:
    base_url: str
    env: dict[str, str]
    log_dir: Path
    server: subprocess.Popen | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def store_headers(self) -> dict[str, str]:
        key = requests.get(f"{self.base_url}/storefront/config", timeout=30).json()[
            "publishable_key"
        ]
        return {"x-publishable-api-key": key}

    def admin_headers(self) -> dict[str, str]:
        response = requests.post(
            f"{self.base_url}/auth/user/emailpass",
            json={"email": SECRET["admin-email"], "password": SECRET["admin-password"]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def admin_get(self, path: str, **params) -> dict:
        response = requests.get(
            f"{self.base_url}{path}", headers=self.admin_headers(), params=params, timeout=30
        )
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()


def chart_env(pg_port: int, redis_port: int, http_port: int) -> dict[str, str]:
    """The setup init container's environment as the chart renders it.

    Secret references are resolved from SECRET, ``$(VAR)`` is expanded the
    way the kubelet does it, and in-cluster addresses become loopback ones.
    """
    docs = render("medusa", [DEPLOY_VALUES / "medusa-local.yaml", STORE_VALUES], release=RELEASE)
    [server] = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-medusa")
    ]
    [setup] = server["spec"]["template"]["spec"]["initContainers"]
    local_url = f"http://127.0.0.1:{http_port}"
    replacements = {
        f"{RELEASE}-postgresql:5432": f"127.0.0.1:{pg_port}",
        f"{RELEASE}-redis:6379": f"127.0.0.1:{redis_port}",
        CHART_URL: local_url,
    }
    env: dict[str, str] = {}
    for item in setup["env"]:
        if "valueFrom" in item:
            value = SECRET[item["valueFrom"]["secretKeyRef"]["key"]]
        else:
            value = item["value"]
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)
            for old, new in replacements.items():
                value = value.replace(old, new)
        env[item["name"]] = value
    env["PORT"] = str(http_port)
    return env


def process_env(chart: dict[str, str]) -> dict[str, str]:
    """The chart's variables on top of a minimal base, like a container's."""
    base = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR") if name in os.environ}
    return {**base, **chart}


def run_setup(app: MedusaApp, label: str) -> float:
    """Run bin/setup.sh exactly as the init container does (`/app/bin/setup.sh`)."""
    started = time.monotonic()
    with open(app.log_dir / f"setup-{label}.log", "wb") as log:
        proc = subprocess.run(
            [str(SERVER_DIR / "bin" / "setup.sh")],
            cwd=SERVER_DIR,
            env=process_env(app.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    output = (app.log_dir / f"setup-{label}.log").read_text(errors="replace")
    assert proc.returncode == 0, f"bin/setup.sh ({label}) failed:\n{output[-4000:]}"
    return time.monotonic() - started


def start_server(app: MedusaApp) -> None:
    """`medusa start` from .medusa/server, the container's command."""
    log = open(app.log_dir / "server.log", "ab")  # noqa: SIM115 - closed with the process
    app.server = subprocess.Popen(
        [str(SERVER_DIR / "node_modules" / ".bin" / "medusa"), "start"],
        cwd=SERVER_DIR,
        env=process_env(app.env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if app.server.poll() is not None:
            tail = (app.log_dir / "server.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"medusa start exited with {app.server.returncode}:\n{tail}")
        try:
            if requests.get(f"{app.base_url}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError("the Medusa server did not answer /health within 180s")


def stop_server(app: MedusaApp) -> None:
    if app.server and app.server.poll() is None:
        os.killpg(app.server.pid, signal.SIGTERM)
        try:
            app.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(app.server.pid, signal.SIGKILL)
            app.server.wait(timeout=10)


@pytest.fixture(scope="module")
def medusa_app(tmp_path_factory) -> Iterator[MedusaApp]:
    if not shutil.which("node") or not shutil.which("npm"):
        missing("node/npm are not installed (Node 20 is needed for the Medusa app)")
    workdir = tmp_path_factory.mktemp("medusa")
    timings: dict[str, float] = {}

    started = time.monotonic()
    install = subprocess.run(["bash", str(SETUP_APP)], capture_output=True, text=True, timeout=1500)
    assert install.returncode == 0, (
        f"setup-medusa-app.sh failed:\n{install.stdout[-3000:]}\n{install.stderr[-3000:]}"
    )
    timings["install and build"] = time.monotonic() - started

    services: list[devservices.Service] = []
    app: MedusaApp | None = None
    try:
        postgres = devservices.start_postgres(workdir / "postgres", fresh=True)
        services.append(postgres)
        redis = devservices.start_redis(workdir / "redis")
        services.append(redis)
        create_app_database(postgres)

        http_port = devservices.free_port()
        app = MedusaApp(
            base_url=f"http://127.0.0.1:{http_port}",
            env=chart_env(postgres.port, redis.port, http_port),
            log_dir=workdir,
            timings=timings,
        )
        timings["first setup"] = run_setup(app, "first")
        started = time.monotonic()
        start_server(app)
        timings["server start"] = time.monotonic() - started
        yield app
    finally:
        if app is not None:
            stop_server(app)
            print(f"\nmedusa timings: { {k: round(v, 1) for k, v in timings.items()} }")
            print(f"logs in {workdir}")
        for service in reversed(services):
            service.stop()


def create_app_database(postgres: devservices.Service) -> None:
    """The role and database the chart's PostgreSQL init script creates."""
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE medusa LOGIN PASSWORD '{SECRET['db-password']}'")
        conn.execute("CREATE DATABASE medusa OWNER medusa")


# --- helpers that shop through the Store API ----------------------------------


def store_call(app: MedusaApp, method: str, path: str, headers: dict, **kwargs) -> dict:
    response = requests.request(
        method, f"{app.base_url}{path}", headers=headers, timeout=60, **kwargs
    )
    assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def place_order_through_the_store_api(app: MedusaApp, email: str) -> dict:
    headers = app.store_headers()
    [region] = store_call(app, "GET", "/store/regions", headers)["regions"]
    products = store_call(
        app,
        "GET",
        "/store/products",
        headers,
        params={"region_id": region["id"], "fields": "*variants.calculated_price"},
    )["products"]
    variant = products[0]["variants"][0]
    assert variant["calculated_price"]["calculated_amount"] > 0

    cart = store_call(app, "POST", "/store/carts", headers, json={"region_id": region["id"]})[
        "cart"
    ]
    cart = store_call(
        app,
        "POST",
        f"/store/carts/{cart['id']}/line-items",
        headers,
        json={"variant_id": variant["id"], "quantity": 2},
    )["cart"]
    address = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "address_1": "Unter den Linden 1",
        "city": "Berlin",
        "postal_code": "10117",
        "country_code": "de",
    }
    cart = store_call(
        app,
        "POST",
        f"/store/carts/{cart['id']}",
        headers,
        json={"email": email, "shipping_address": address, "billing_address": address},
    )["cart"]
    options = store_call(
        app, "GET", "/store/shipping-options", headers, params={"cart_id": cart["id"]}
    )["shipping_options"]
    [standard] = [o for o in options if o["name"] == "Standard shipping"]
    store_call(
        app,
        "POST",
        f"/store/carts/{cart['id']}/shipping-methods",
        headers,
        json={"option_id": standard["id"]},
    )
    collection = store_call(
        app, "POST", "/store/payment-collections", headers, json={"cart_id": cart["id"]}
    )["payment_collection"]
    store_call(
        app,
        "POST",
        f"/store/payment-collections/{collection['id']}/payment-sessions",
        headers,
        json={"provider_id": "pp_system_default"},
    )
    result = store_call(app, "POST", f"/store/carts/{cart['id']}/complete", headers)
    assert result["type"] == "order", result
    return result["order"]


def admin_orders(app: MedusaApp) -> list[dict]:
    return app.admin_get("/admin/orders", limit=100, fields="id,display_id,email,total")["orders"]


# --- the tests ------------------------------------------------------------------


def test_the_storefront_and_admin_are_served(medusa_app):
    page = requests.get(f"{medusa_app.base_url}/", timeout=30)
    assert page.status_code == 200 and "<title>" in page.text
    assert requests.get(f"{medusa_app.base_url}/health", timeout=30).text == "OK"
    assert requests.get(f"{medusa_app.base_url}/app/", timeout=30).status_code == 200
    config = requests.get(f"{medusa_app.base_url}/storefront/config", timeout=30).json()
    assert config["store_name"] == "Acme Shop"
    assert config["publishable_key"].startswith("pk_")
    assert config["region"]["currency_code"] == "eur"


def test_a_shopper_orders_through_the_store_api_and_the_admin_api_lists_it(medusa_app):
    order = place_order_through_the_store_api(medusa_app, "api-shopper@example.com")

    found = {o["id"]: o for o in admin_orders(medusa_app)}
    assert order["id"] in found
    assert found[order["id"]]["email"] == "api-shopper@example.com"
    detail = medusa_app.admin_get(
        f"/admin/orders/{order['id']}",
        fields="id,payment_status,items.quantity,shipping_methods.name",
    )["order"]
    assert [item["quantity"] for item in detail["items"]] == [2]
    assert detail["shipping_methods"][0]["name"] == "Standard shipping"


@pytest.mark.browser
def test_a_shopper_orders_in_the_storefront_and_the_admin_finds_it(chromium_browser, medusa_app):
    page = chromium_browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{medusa_app.base_url}/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#store-name").inner_text() == "Acme Shop"
    assert page.get_by_test_id("product").count() == 3

    product = page.get_by_test_id("product").filter(has_text="Hooded Sweatshirt")
    select = product.get_by_test_id("variant-select")
    medium = select.locator("option", has_text=re.compile(r"^M - ")).get_attribute("value")
    select.select_option(medium)
    product.get_by_test_id("add-to-cart").click()
    page.wait_for_function("document.getElementById('cart-count').textContent === '1'")

    page.get_by_test_id("cart-button").click()
    assert "Hooded Sweatshirt (M) x 1" in page.get_by_test_id("cart-items").inner_text()
    page.get_by_test_id("checkout").click()

    page.fill("input[name=email]", "browser-shopper@example.com")
    page.fill("input[name=first_name]", "Grace")
    page.fill("input[name=last_name]", "Hopper")
    page.fill("input[name=address_1]", "Rue de Rivoli 1")
    page.fill("input[name=postal_code]", "75001")
    page.fill("input[name=city]", "Paris")
    page.select_option("#country", "fr")
    page.get_by_role("button", name="Continue to shipping").click()

    page.get_by_test_id("shipping-option").first.wait_for()
    page.get_by_label(re.compile("Express shipping")).check()
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_test_id("place-order").click()

    page.get_by_test_id("confirmation").wait_for()
    order_id = page.get_by_test_id("order-id").inner_text()
    assert page.get_by_test_id("order-number").inner_text().startswith("#")
    page.close()

    detail = medusa_app.admin_get(
        f"/admin/orders/{order_id}", fields="id,email,items.title,shipping_methods.name"
    )["order"]
    assert detail["email"] == "browser-shopper@example.com"
    assert detail["shipping_methods"][0]["name"] == "Express shipping"
    assert order_id in {o["id"] for o in admin_orders(medusa_app)}


@pytest.mark.browser
def test_the_admin_dashboard_logs_in_and_lists_the_orders(chromium_browser, medusa_app):
    orders = admin_orders(medusa_app) or [
        place_order_through_the_store_api(medusa_app, "dashboard@example.com")
    ]
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{medusa_app.base_url}/app/login")
    page.fill("input[name=email]", SECRET["admin-email"])
    page.fill("input[name=password]", SECRET["admin-password"])
    page.get_by_role("button", name=re.compile("continue", re.I)).click()
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{medusa_app.base_url}/app/orders")
    for order in orders:
        page.get_by_text(f"#{order['display_id']}", exact=True).first.wait_for()
    context.close()


def catalogue_counts(app: MedusaApp) -> dict[str, int]:
    return {
        path: app.admin_get(path, limit=1)["count"]
        for path in (
            "/admin/regions",
            "/admin/products",
            "/admin/api-keys",
            "/admin/shipping-options",
            "/admin/sales-channels",
            "/admin/stock-locations",
            "/admin/users",
        )
    }


def test_running_setup_again_changes_nothing(medusa_app):
    # Tests may run alone (or on another xdist worker): make sure there is
    # at least one order to lose.
    place_order_through_the_store_api(medusa_app, "before-rerun@example.com")
    before = catalogue_counts(medusa_app)
    orders_before = {o["id"] for o in admin_orders(medusa_app)}
    assert before["/admin/regions"] == 1 and before["/admin/products"] == 3
    assert before["/admin/shipping-options"] == 2
    # Medusa's own "Default Publishable API Key" plus the seed's "Storefront" key.
    titles = [k["title"] for k in medusa_app.admin_get("/admin/api-keys", limit=50)["api_keys"]]
    assert titles.count("Storefront") == 1, titles

    # The init container runs on every pod start, next to a live database.
    medusa_app.timings["second setup"] = run_setup(medusa_app, "second")

    assert catalogue_counts(medusa_app) == before
    assert {o["id"] for o in admin_orders(medusa_app)} == orders_before
    assert requests.get(f"{medusa_app.base_url}/", timeout=30).status_code == 200
    # And the shop still sells after the re-run.
    order = place_order_through_the_store_api(medusa_app, "after-rerun@example.com")
    assert order["id"] in {o["id"] for o in admin_orders(medusa_app)}
