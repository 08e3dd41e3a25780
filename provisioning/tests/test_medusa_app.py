"""The Medusa store app, for real: installed natively, set up and shopped in.

test_medusa_image.py runs the image itself in podman; this test runs the
same app without any container runtime, so its failures show up on any
machine with Node, with the same pieces:

- scripts/setup-medusa-app.sh installs the app from images/medusa with the
  machine's Node (20 here; the image has Node 22) (``npm ci`` + ``medusa
  build``) into .medusa/server, the image's /app;
- real PostgreSQL 16 and Redis 6.2 run as child processes
  (storeplatform.devservices), with an unprivileged ``medusa`` role owning
  the ``medusa`` database, as the chart's PostgreSQL init script creates it;
- a real SMTP server (aiosmtpd) on loopback stands in for the operator's
  relay, with STARTTLS and a password, as the chart's default ``tls:
  starttls`` asks;
- the environment is the one the chart renders for the setup init container
  and for the server (``helm template`` with the SMTP values pointed at that
  server, secrets filled in, ``$(VAR)`` expanded as the kubelet does, service
  host names and the public URL pointed at loopback);
- bin/setup.sh and ``medusa start`` run from .medusa/server, as the
  container's command lines do.

Then a shopper orders through the Store API and through the storefront in
Chromium, the order confirmation arrives at the relay, an uploaded image is
served at the store's URL, the admin finds the orders, and a second setup run
changes nothing. Everything is started once per module and stopped even on
failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from provisioning.tests.chartkit import ROOT
from provisioning.tests.medusakit import (
    APP_DIR,
    PUBLIC_URL,
    RELEASE,
    SECRET,
    SMTP_SECRET,
    SMTP_USER,
    STORE_NAME,
    SmtpSink,
    StoreApi,
    assert_order_confirmation,
    container_env,
    missing,
    rendered_containers,
)
from storeplatform import devservices

pytestmark = pytest.mark.slow

SERVER_DIR = APP_DIR / ".medusa" / "server"
SETUP_APP = ROOT / "scripts" / "setup-medusa-app.sh"
# A 1x1 PNG: what the admin dashboard uploads as a product image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)


@dataclass
class MedusaApp(StoreApi):
    setup_env: dict[str, str] = field(default_factory=dict)
    server_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = Path()
    smtp: SmtpSink | None = None
    server: subprocess.Popen | None = None
    postgres: devservices.Service | None = None  # its superuser, for the backup test
    # In-cluster addresses -> loopback ones, and the chart's extra values.
    replacements: dict[str, str] = field(default_factory=dict)
    extra_values: dict = field(default_factory=dict)


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
            env=process_env(app.setup_env),
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
        env=process_env(app.server_env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def tail() -> str:
        return (app.log_dir / "server.log").read_text(errors="replace")[-4000:]

    def exited() -> str | None:
        if app.server.poll() is None:
            return None
        return f"medusa start exited with {app.server.returncode}:\n{tail()}"

    try:
        app.wait_until_healthy(exited)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{tail()}") from None


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
        missing("node/npm are not installed (Node 20+ is needed for the Medusa app)")
    workdir = tmp_path_factory.mktemp("medusa")
    timings: dict[str, float] = {}

    started = time.monotonic()
    install = subprocess.run(["bash", str(SETUP_APP)], capture_output=True, text=True, timeout=1500)
    assert install.returncode == 0, (
        f"setup-medusa-app.sh failed:\n{install.stdout[-3000:]}\n{install.stderr[-3000:]}"
    )
    timings["install and build"] = time.monotonic() - started

    services: list = []
    app: MedusaApp | None = None
    try:
        postgres = devservices.start_postgres(workdir / "postgres", fresh=True)
        services.append(postgres)
        redis = devservices.start_redis(workdir / "redis")
        services.append(redis)
        create_app_database(postgres)
        smtp = SmtpSink(tls_dir=workdir / "smtp-tls").start()
        services.append(smtp)

        http_port = devservices.free_port()
        local_url = f"http://127.0.0.1:{http_port}"
        extra_values = {
            "smtp": {
                "host": smtp.hostname,
                "port": smtp.port,
                "username": SMTP_USER,
                "existingSecret": SMTP_SECRET,
                "tls": "starttls",
            }
        }
        containers = rendered_containers(extra_values, workdir)
        replacements = {
            f"{RELEASE}-postgresql:5432": f"127.0.0.1:{postgres.port}",
            f"{RELEASE}-redis:6379": f"127.0.0.1:{redis.port}",
            PUBLIC_URL: local_url,
        }
        setup_env = container_env(containers["setup"], replacements)
        server_env = container_env(containers["medusa"], replacements)
        for env in (setup_env, server_env):
            env["PORT"] = str(http_port)
        # Stands in for a relay certificate from a public CA, which Node trusts
        # without being told.
        server_env["NODE_EXTRA_CA_CERTS"] = str(smtp.ca_path)
        app = MedusaApp(
            base_url=local_url,
            setup_env=setup_env,
            server_env=server_env,
            log_dir=workdir,
            smtp=smtp,
            timings=timings,
            postgres=postgres,
            replacements=replacements,
            extra_values=extra_values,
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


# --- the tests ------------------------------------------------------------------


def test_the_storefront_and_admin_are_served(medusa_app):
    page = requests.get(f"{medusa_app.base_url}/", timeout=30)
    assert page.status_code == 200 and "<title>" in page.text
    assert requests.get(f"{medusa_app.base_url}/health", timeout=30).text == "OK"
    assert requests.get(f"{medusa_app.base_url}/app/", timeout=30).status_code == 200
    config = requests.get(f"{medusa_app.base_url}/storefront/config", timeout=30).json()
    assert config["store_name"] == STORE_NAME
    assert config["publishable_key"].startswith("pk_")
    assert config["region"]["currency_code"] == "eur"


def test_a_shopper_orders_through_the_store_api_and_the_admin_api_lists_it(medusa_app):
    order = medusa_app.place_order("api-shopper@example.com")

    found = {o["id"]: o for o in medusa_app.admin_orders()}
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
    assert order_id in {o["id"] for o in medusa_app.admin_orders()}


@pytest.mark.browser
def test_the_admin_dashboard_logs_in_and_lists_the_orders(chromium_browser, medusa_app):
    orders = medusa_app.admin_orders() or [
        medusa_app.place_order("dashboard@example.com")
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
    medusa_app.place_order("before-rerun@example.com")
    before = catalogue_counts(medusa_app)
    orders_before = {o["id"] for o in medusa_app.admin_orders()}
    assert before["/admin/regions"] == 1 and before["/admin/products"] == 3
    assert before["/admin/shipping-options"] == 2
    # Medusa's own "Default Publishable API Key" plus the seed's "Storefront" key.
    titles = [k["title"] for k in medusa_app.admin_get("/admin/api-keys", limit=50)["api_keys"]]
    assert titles.count("Storefront") == 1, titles

    # The init container runs on every pod start, next to a live database.
    medusa_app.timings["second setup"] = run_setup(medusa_app, "second")

    assert catalogue_counts(medusa_app) == before
    assert {o["id"] for o in medusa_app.admin_orders()} == orders_before
    assert requests.get(f"{medusa_app.base_url}/", timeout=30).status_code == 200
    # And the shop still sells after the re-run.
    order = medusa_app.place_order("after-rerun@example.com")
    assert order["id"] in {o["id"] for o in medusa_app.admin_orders()}


def test_the_order_confirmation_reaches_the_relay_over_starttls_with_a_password(medusa_app):
    order = medusa_app.place_order("mail-shopper@example.com")
    mail = medusa_app.smtp.wait_for("mail-shopper@example.com")
    assert_order_confirmation(mail, order, sender="shop@acme-shop.localtest.me")
    assert mail.tls and mail.login == SMTP_USER
    # Medusa's notification module records what it sent.
    notifications = medusa_app.admin_get(
        "/admin/notifications", limit=100, fields="to,channel,template,provider_id"
    )["notifications"]
    [sent] = [n for n in notifications if n["to"] == "mail-shopper@example.com"]
    assert (sent["channel"], sent["template"]) == ("email", "order-placed")


def test_an_uploaded_product_image_is_served_at_the_stores_address(medusa_app):
    uploaded = medusa_app.upload("shirt.png", PNG, "image/png")
    # Here the store's public URL is the loopback address the chart's URL
    # was pointed at; test_medusa_image.py keeps the chart's own.
    assert uploaded["url"] == f"{medusa_app.base_url}/static/{uploaded['id']}"
    response = requests.get(uploaded["url"], timeout=30)
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["Content-Type"] == "image/png"


# --- backups (issue 12) ---------------------------------------------------------------


def backup_env(app: MedusaApp, storage, workdir: Path, prefix: str, *, database: str = "medusa",
               files_dir: Path | None = None) -> dict[str, str]:
    """What the chart's backup Job gives its container, pointed at this app's
    PostgreSQL (PostgreSQL 16's own pg_dump/pg_restore on PATH) and uploads."""
    password = workdir / "db-password"
    password.write_text(SECRET["db-password"] + "\n")
    pg_bin = str(Path(devservices._pg_bin("pg_dump")).parent)
    return {
        **storage.env, "BACKUP_PREFIX": prefix,
        "DB_HOST": "127.0.0.1", "DB_PORT": str(app.postgres.port), "DB_NAME": database,
        "DB_USER": "medusa", "DB_PASSWORD_FILE": str(password),
        "FILES_DIR": str(files_dir or SERVER_DIR / "static"),
        "TERMINATION_LOG": str(workdir / "termination-log"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), pg_bin, os.environ["PATH"]]),
        "PYTHONPATH": str(ROOT), "HOME": str(workdir), "TMPDIR": str(workdir),
    }


def chart_script(name: str, env: dict[str, str]) -> None:
    done = subprocess.run(["bash", str(ROOT / "charts" / "medusa" / "files" / name)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def test_a_restored_backup_brings_back_the_order_the_admin_api_lists(
    medusa_app, object_storage, tmp_path
):
    """The chart's backup and restore scripts against the real Medusa app:
    an order placed, backed up, the database dropped, restored: the Admin
    API finds the order; a copy restored into a second database has it too."""
    import psycopg

    order = medusa_app.place_order("backup-shopper@example.com")
    image = medusa_app.upload("backup.png", PNG, "image/png")
    prefix = "stores/medusa-app/b-test/"
    chart_script("backup.sh", backup_env(medusa_app, object_storage, tmp_path, prefix))
    assert f"{prefix}parts.json" in object_storage.object_keys(prefix)

    stop_server(medusa_app)
    try:
        with psycopg.connect(medusa_app.postgres.url, autocommit=True) as conn:
            conn.execute("DROP DATABASE medusa WITH (FORCE)")
            conn.execute("CREATE DATABASE medusa OWNER medusa")
        shutil.rmtree(SERVER_DIR / "static")
        (SERVER_DIR / "static").mkdir()
        chart_script("restore.sh", backup_env(medusa_app, object_storage, tmp_path, prefix))
    finally:
        start_server(medusa_app)

    found = {o["id"]: o for o in medusa_app.admin_orders()}
    assert found[order["id"]]["email"] == "backup-shopper@example.com"
    assert requests.get(image["url"], timeout=30).content == PNG

    with psycopg.connect(medusa_app.postgres.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE medusa_copy OWNER medusa")
    copy_files = tmp_path / "copy-static"
    copy_files.mkdir()
    chart_script("restore.sh", backup_env(medusa_app, object_storage, tmp_path, prefix,
                                          database="medusa_copy", files_dir=copy_files))
    copy_url = medusa_app.postgres.url.rsplit("/", 1)[0] + "/medusa_copy"
    with psycopg.connect(copy_url) as conn:
        row = conn.execute('SELECT email FROM "order" WHERE id = %s', (order["id"],)).fetchone()
    assert row == ("backup-shopper@example.com",)
    assert (copy_files / image["id"]).read_bytes() == PNG


# --- a warm-pool claim (issue 13) --------------------------------------------------------


def test_a_claim_renames_the_store_and_moves_its_addresses(medusa_app, tmp_path):
    """What a warm-pool claim does to a Medusa store: one upgrade with the
    owner's name and host in the values; the setup container renames the
    store, and the restarted server answers CORS for the new address."""
    new_url = "http://renamed-shop.localtest.me"
    containers = rendered_containers(
        {**medusa_app.extra_values,
         "store": {"name": "Renamed Shop", "host": "renamed-shop.localtest.me"}}, tmp_path)
    # The store's old address was pointed at loopback; the new one stays as
    # the chart renders it: it is the origin a shopper's browser sends.
    renamed_setup = container_env(containers["setup"], medusa_app.replacements)
    renamed_server = container_env(containers["medusa"], medusa_app.replacements)
    for env in (renamed_setup, renamed_server):
        env["PORT"] = medusa_app.server_env["PORT"]
    renamed_server["NODE_EXTRA_CA_CERTS"] = medusa_app.server_env["NODE_EXTRA_CA_CERTS"]
    original = (medusa_app.setup_env, medusa_app.server_env)

    stop_server(medusa_app)
    medusa_app.setup_env, medusa_app.server_env = renamed_setup, renamed_server
    try:
        run_setup(medusa_app, "renamed")
        start_server(medusa_app)
        config = requests.get(f"{medusa_app.base_url}/storefront/config", timeout=30).json()
        assert config["store_name"] == "Renamed Shop"
        preflight = requests.options(
            f"{medusa_app.base_url}/store/products", timeout=30,
            headers={"Origin": new_url, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "x-publishable-api-key"})
        assert preflight.headers.get("Access-Control-Allow-Origin") == new_url
        foreign = requests.options(
            f"{medusa_app.base_url}/store/products", timeout=30,
            headers={"Origin": "http://someone-else.example", "Access-Control-Request-Method":
                     "GET"})
        assert foreign.headers.get("Access-Control-Allow-Origin") != "http://someone-else.example"
    finally:
        stop_server(medusa_app)
        medusa_app.setup_env, medusa_app.server_env = original
        run_setup(medusa_app, "back")
        start_server(medusa_app)
    config = requests.get(f"{medusa_app.base_url}/storefront/config", timeout=30).json()
    assert config["store_name"] == STORE_NAME
