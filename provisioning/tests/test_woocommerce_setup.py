"""The WooCommerce setup script (charts/woocommerce/files/setup.sh).

WordPress cannot run here (no wordpress.org access), so the script runs
against a stand-in ``wp`` (and ``php``) put first on PATH: a small model of a
WordPress site kept in a JSON file (fixtures/woocommerce/fake_wp.py), which
logs every call. ``wp`` relays each call to that model through a loopback
server started here, so a setup run costs no Python start per call. The tests
assert on the resulting site state and on which state-changing commands were
issued.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socketserver
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from provisioning.tests.chartkit import ROOT

SCRIPT = ROOT / "charts" / "woocommerce" / "files" / "setup.sh"
FIXTURES = Path(__file__).parent / "fixtures" / "woocommerce"
FAKES = FIXTURES / "bin"
SHELLCHECK = ROOT / ".venv" / "bin" / "shellcheck"

PASSWORD = "S3ntinel-Adm1n-Pass"
ENV = {
    "STORE_URL": "http://acme-shop.localtest.me",
    "STORE_TITLE": "Acme Shop",
    "WP_ADMIN_USER": "owner",
    "WP_ADMIN_EMAIL": "owner@example.com",
    "WP_ADMIN_PASSWORD": PASSWORD,
    "WORDPRESS_DB_HOST": "store-test-mariadb:3306",
    "WOOCOMMERCE_SOURCE": "download",
    "WOOCOMMERCE_VERSION": "10.2.2",
    "SAMPLE_PRODUCTS": "true",
    "WAIT_TIMEOUT": "5",
    "WAIT_INTERVAL": "1",
}
SAMPLE_SKUS = {"SP-GIFT-10", "SP-EBOOK", "SP-WORKSHOP"}

# Commands that change the site; a run over a finished store issues none.
CHANGING = {
    ("core", "install"),
    ("option", "update"),
    ("option", "patch"),
    ("rewrite", "structure"),
    ("plugin", "install"),
    ("plugin", "activate"),
    ("wc", "tool"),
    ("wc", "product", "create"),
    ("search-replace",),
}


def _load_model():
    spec = importlib.util.spec_from_file_location("fake_wp", FIXTURES / "fake_wp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Relay(socketserver.StreamRequestHandler):
    """Answers one forwarded `wp` call (see fixtures/woocommerce/bin/wp)."""

    model = _load_model()

    def handle(self) -> None:
        buffer = b""
        fields: list[bytes] = []
        while len(fields) < 4 or len(fields) < 4 + int(fields[3]):
            chunk = self.request.recv(65536)
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            fields += complete
        state, log, wp_path, _argc, *args = (f.decode() for f in fields)
        code, out, err = self.model.run(args, state, log, wp_path)
        self.wfile.write(f"{code}\0{out}\0{err}\0".encode())


@pytest.fixture(scope="module")
def relay_port():
    server = socketserver.TCPServer(("127.0.0.1", 0), _Relay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class Site:
    """A WordPress volume plus the fake wp's state and call log."""

    def __init__(self, tmp_path: Path, relay_port: int):
        self.relay_port = relay_port
        self.root = tmp_path / "html"
        (self.root / "wp-includes").mkdir(parents=True)
        (self.root / "wp-content" / "plugins").mkdir(parents=True)
        self.state_file = tmp_path / "state.json"
        self.log_file = tmp_path / "calls.jsonl"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for fake in ("wp", "php"):
            # Copied and chmod-ed so a lost executable bit in git cannot break the tests.
            shutil.copy(FAKES / fake, self.bin / fake)
            (self.bin / fake).chmod(stat.S_IRWXU)
        self.wordpress_files_copied()

    def wordpress_files_copied(self) -> None:
        """What the WordPress pod's entrypoint leaves on the volume."""
        (self.root / "wp-config.php").write_text("<?php // fake\n")
        (self.root / "wp-includes" / "version.php").write_text("<?php $wp_version = '6.8.3';\n")

    def env(self, **overrides: str) -> dict:
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_WP_STATE": str(self.state_file),
            "FAKE_WP_LOG": str(self.log_file),
            "FAKE_WP_PORT": str(self.relay_port),
            "FAKE_WP_MODEL": str(FIXTURES / "fake_wp.py"),
            "WP_PATH": str(self.root),
            **ENV,
            **overrides,
        }

    def run_setup(self, **overrides: str) -> subprocess.CompletedProcess:
        if self.log_file.exists():
            self.log_file.unlink()
        return subprocess.run(
            ["sh", str(SCRIPT)],
            env=self.env(**overrides),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def wp(self, *args: str) -> subprocess.CompletedProcess:
        """Drive the fake directly, to prepare a half-finished site."""
        return subprocess.run(
            [str(self.bin / "wp"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
        )

    @property
    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def set_state(self, **changes) -> None:
        state = self.state if self.state_file.exists() else {}
        state.update(changes)
        self.state_file.write_text(json.dumps(state))

    @property
    def calls(self) -> list[list[str]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def changing_calls(self) -> list[list[str]]:
        found = []
        for call in self.calls:
            words = [a for a in call if not a.startswith("--")]
            if any(tuple(words[:n]) in CHANGING for n in (1, 2, 3)):
                found.append(call)
        return found

    def products(self) -> dict[str, dict]:
        return {p["sku"]: p for p in self.state["posts"].values() if p["post_type"] == "product"}


@pytest.fixture
def site(tmp_path: Path, relay_port: int) -> Site:
    return Site(tmp_path, relay_port)


def assert_store_ready(site: Site, url: str = ENV["STORE_URL"], title: str = ENV["STORE_TITLE"]):
    state = site.state
    options = state["options"]
    assert state["installed"]
    assert "owner" in state["users"]
    assert options["blogname"] == title
    assert options["home"] == url and options["siteurl"] == url
    assert options["permalink_structure"] == "/%postname%/"
    assert state["plugins"]["woocommerce"]["active"]
    for option in (
        "woocommerce_shop_page_id",
        "woocommerce_cart_page_id",
        "woocommerce_checkout_page_id",
        "woocommerce_myaccount_page_id",
    ):
        assert state["posts"][options[option]]["post_status"] == "publish", option
    assert options["show_on_front"] == "page"
    assert options["page_on_front"] == options["woocommerce_shop_page_id"]
    assert options["woocommerce_coming_soon"] == "no"
    assert options["woocommerce_onboarding_profile"]["skipped"] is True
    assert options["woocommerce_cod_settings"]["enabled"] == "yes"
    assert options["woocommerce_cod_settings"]["enable_for_virtual"] == "yes"
    products = site.products()
    assert set(products) == SAMPLE_SKUS
    for product in products.values():
        assert product["post_status"] == "publish"
        assert product["virtual"] == "true"
        assert float(product["regular_price"]) > 0


def test_the_setup_script_is_shellcheck_clean():
    proc = subprocess.run(
        [str(SHELLCHECK), "--shell=sh", "--severity=style", str(SCRIPT)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout


def test_a_first_run_turns_an_empty_volume_into_a_store_that_sells(site):
    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    assert_store_ready(site)
    assert site.state["plugins"]["woocommerce"]["version"] == "10.2.2"
    assert site.changing_calls()[0][:2] == ["core", "install"]
    assert "store ready at http://acme-shop.localtest.me" in proc.stdout


def test_a_second_run_changes_nothing(site):
    assert site.run_setup().returncode == 0
    before = site.state

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    assert ["core", "is-installed"] in site.calls  # it did look
    assert site.changing_calls() == []
    assert site.state == before


def test_a_run_after_core_install_only_finishes_the_rest(site):
    site.wp(
        "core",
        "install",
        f"--url={ENV['STORE_URL']}",
        f"--title={ENV['STORE_TITLE']}",
        "--admin_user=owner",
        "--admin_email=owner@example.com",
        f"--admin_password={PASSWORD}",
        "--skip-email",
    )

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    changed = [call[:2] for call in site.changing_calls()]
    assert ["core", "install"] not in changed
    assert ["plugin", "install"] in changed and ["plugin", "activate"] in changed
    assert_store_ready(site)


def test_a_run_that_died_after_some_products_creates_only_the_missing_ones(site):
    site.set_state(fail=["wc product create"])
    assert site.run_setup().returncode != 0
    site.set_state(fail=[])
    site.wp(
        "wc",
        "product",
        "create",
        "--name=Gift card 10",
        "--sku=SP-GIFT-10",
        "--type=simple",
        "--status=publish",
        "--virtual=true",
        "--regular_price=10.00",
        "--user=owner",
    )

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    created = [c for c in site.changing_calls() if c[:3] == ["wc", "product", "create"]]
    assert sorted(a for c in created for a in c if a.startswith("--sku=")) == [
        "--sku=SP-EBOOK",
        "--sku=SP-WORKSHOP",
    ]
    assert [c[:2] for c in site.changing_calls()] == [["wc", "product"]] * 2
    assert_store_ready(site)


def test_an_installed_but_inactive_plugin_is_activated_not_downloaded_again(site):
    assert site.run_setup().returncode == 0
    site.set_state(plugins={"woocommerce": {"active": False, "version": "10.2.2"}})

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    assert [c[:3] for c in site.changing_calls()] == [["plugin", "activate", "woocommerce"]]


def test_a_deleted_cart_page_is_recreated(site):
    assert site.run_setup().returncode == 0
    state = site.state
    state["posts"][state["options"]["woocommerce_cart_page_id"]]["post_status"] = "trash"
    site.state_file.write_text(json.dumps(state))

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    assert [c[:4] for c in site.changing_calls()] == [["wc", "tool", "run", "install_pages"]]
    assert_store_ready(site)


def test_an_upgrade_with_a_new_title_and_scheme_updates_only_those(site):
    assert site.run_setup().returncode == 0

    proc = site.run_setup(STORE_TITLE="Acme Shop 2", STORE_URL="https://acme-shop.example.com")

    assert proc.returncode == 0, proc.stderr
    # The URL moves with search-replace (home and siteurl included), the title
    # with an option update.
    assert [c[:3] for c in site.changing_calls()] == [
        ["search-replace", ENV["STORE_URL"], "https://acme-shop.example.com"],
        ["option", "update", "blogname"]]
    assert_store_ready(site, url="https://acme-shop.example.com", title="Acme Shop 2")


def test_it_waits_for_the_database(site):
    site.set_state(db_failures_left=1)

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    assert [c[0] for c in site.calls[:2]] == ["php", "php"]
    assert "waiting for the database" in proc.stdout
    assert_store_ready(site)


def test_it_gives_up_when_wordpress_never_appears_on_the_volume(site):
    (site.root / "wp-config.php").unlink()

    proc = site.run_setup(WAIT_TIMEOUT="1")

    assert proc.returncode != 0
    assert "gave up waiting for the WordPress files" in proc.stdout
    assert site.calls == []


def test_a_failing_step_fails_the_job_and_stops_there(site):
    site.set_state(fail=["plugin install"])

    proc = site.run_setup()

    assert proc.returncode != 0
    assert not any(c[:2] == ["plugin", "activate"] for c in site.calls)
    assert "simulated failure" in proc.stderr


def test_the_baked_image_copies_the_plugin_instead_of_downloading(site, tmp_path):
    baked = tmp_path / "image" / "woocommerce"
    baked.mkdir(parents=True)
    (baked / "woocommerce.php").write_text("<?php\n")

    proc = site.run_setup(WOOCOMMERCE_SOURCE="baked", BAKED_PLUGIN_DIR=str(baked))

    assert proc.returncode == 0, proc.stderr
    assert not any(c[:2] == ["plugin", "install"] for c in site.calls)
    assert (site.root / "wp-content" / "plugins" / "woocommerce" / "woocommerce.php").exists()
    assert_store_ready(site)


def test_sample_products_can_be_turned_off(site):
    proc = site.run_setup(SAMPLE_PRODUCTS="false")

    assert proc.returncode == 0, proc.stderr
    assert site.products() == {}


def test_the_admin_password_never_reaches_the_log(site):
    proc = site.run_setup()

    assert proc.returncode == 0
    assert PASSWORD not in proc.stdout + proc.stderr


# --- the URL move (issue 11) ------------------------------------------------------


def test_a_new_primary_domain_moves_the_site_with_search_replace_once(site):
    assert site.run_setup().returncode == 0
    state = site.state
    old = ENV["STORE_URL"]
    # Content that links to the old URL, and a serialized option holding it.
    post = next(iter(state["posts"].values()))
    post.update(post_content=f'<a href="{old}/shop/">Shop</a>', guid=f"{old}/?p=1")
    state["options"]["widget_text"] = {"2": {"text": f"Visit {old}/cart/"}}
    site.state_file.write_text(json.dumps(state))
    new = "https://shop.example.com"

    proc = site.run_setup(STORE_URL=new)

    assert proc.returncode == 0, proc.stderr
    assert site.changing_calls() == [
        ["search-replace", old, new, "--all-tables-with-prefix", "--skip-columns=guid",
         "--precise", "--report-changed-only"],
    ]
    assert f"moving the site from {old} to {new}" in proc.stdout
    state = site.state
    assert (state["options"]["home"], state["options"]["siteurl"]) == (new, new)
    assert state["options"]["widget_text"]["2"]["text"] == f"Visit {new}/cart/"
    moved = state["posts"][next(iter(state["posts"]))]
    assert moved["post_content"] == f'<a href="{new}/shop/">Shop</a>'
    assert moved["guid"] == f"{old}/?p=1"  # an identifier, not a link
    assert_store_ready(site, url=new)

    again = site.run_setup(STORE_URL=new)
    assert again.returncode == 0, again.stderr
    assert site.changing_calls() == []  # idempotent: home already is the new URL


def test_a_failed_url_move_fails_the_job_before_anything_else_changes(site):
    assert site.run_setup().returncode == 0
    site.set_state(fail=["search-replace"])

    proc = site.run_setup(STORE_URL="https://shop.example.com")

    assert proc.returncode != 0
    assert site.state["options"]["home"] == ENV["STORE_URL"]
    assert [c[0] for c in site.changing_calls()] == ["search-replace"]  # and nothing after
