"""The WooCommerce chart's WP-CLI scripts: the setup Job's
(charts/woocommerce/files/setup.sh) and the cron Job's (files/cron.sh).

WordPress cannot run here (no wordpress.org access), so the scripts run
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
import re
import shutil
import socketserver
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from provisioning.tests.chartkit import ROOT

SCRIPT = ROOT / "charts" / "woocommerce" / "files" / "setup.sh"
CRON_SCRIPT = ROOT / "charts" / "woocommerce" / "files" / "cron.sh"
FIXTURES = Path(__file__).parent / "fixtures" / "woocommerce"
FAKES = FIXTURES / "bin"
SHELLCHECK = ROOT / ".venv" / "bin" / "shellcheck"

PASSWORD = "S3ntinel-Adm1n-Pass"
TITLE = "Acme Shop"
ENV = {
    "STORE_URL": "http://acme-shop.localtest.me",
    "WP_ADMIN_USER": "owner",
    "WP_ADMIN_EMAIL": "owner@example.com",
    "WP_ADMIN_PASSWORD": PASSWORD,
    "WORDPRESS_DB_HOST": "store-test-mariadb:3306",
    "WOOCOMMERCE_SOURCE": "download",
    "WOOCOMMERCE_VERSION": "10.2.2",
    "SAMPLE_PRODUCTS": "true",
    "SEED_VERSION": "0.1.0",
    "WAIT_TIMEOUT": "5",
    "WAIT_INTERVAL": "1",
}
SAMPLE_SKUS = {"SP-GIFT-10", "SP-EBOOK", "SP-WORKSHOP"}
# The end of wp-config.php as the WordPress image writes it (its
# wp-config-docker.php), and a copy cut off where its awk might be.
WP_CONFIG = """<?php
define( 'DB_NAME', getenv_docker('WORDPRESS_DB_NAME', 'wordpress') );
if ($configExtra = getenv_docker('WORDPRESS_CONFIG_EXTRA', '')) {
\teval($configExtra);
}
if ( ! defined( 'ABSPATH' ) ) {
\tdefine( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
"""
HALF_WRITTEN_WP_CONFIG = WP_CONFIG[: WP_CONFIG.index("if ( ! defined")]

# Commands that change the site; a run over a finished store issues none.
CHANGING = {
    ("core", "install"),
    ("option", "update"),
    ("option", "patch"),
    ("option", "delete"),
    ("user", "create"),
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
        self.title_file = tmp_path / "store-name"
        self.title_file.write_text(TITLE)
        self.state_file = tmp_path / "state.json"
        self.log_file = tmp_path / "calls.jsonl"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for fake in ("wp", "php"):
            # Copied and chmod-ed so a lost executable bit in git cannot break the tests.
            shutil.copy(FAKES / fake, self.bin / fake)
            (self.bin / fake).chmod(stat.S_IRWXU)
        self.wordpress_files_copied()

    def wordpress_files_copied(self, config: str = WP_CONFIG) -> None:
        """What the WordPress pod's entrypoint leaves on the volume."""
        (self.root / "wp-includes" / "version.php").write_text("<?php $wp_version = '6.8.3';\n")
        (self.root / "wp-config.php").write_text(config)

    def env(self, **overrides: str) -> dict:
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_WP_STATE": str(self.state_file),
            "FAKE_WP_LOG": str(self.log_file),
            "FAKE_WP_PORT": str(self.relay_port),
            "FAKE_WP_MODEL": str(FIXTURES / "fake_wp.py"),
            "WP_PATH": str(self.root),
            "STORE_TITLE_FILE": str(self.title_file),
            **ENV,
            **overrides,
        }

    def run_setup(self, script: Path = SCRIPT, **overrides: str) -> subprocess.CompletedProcess:
        if self.log_file.exists():
            self.log_file.unlink()
        return subprocess.run(
            ["sh", str(script)],
            env=self.env(**overrides),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def run_cron(self, **overrides: str) -> subprocess.CompletedProcess:
        return self.run_setup(CRON_SCRIPT, **overrides)

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


def assert_store_ready(site: Site, url: str = ENV["STORE_URL"], title: str = TITLE):
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
    assert options["storeplatform_seeded"]["version"] == ENV["SEED_VERSION"]


@pytest.mark.parametrize("script", [SCRIPT, CRON_SCRIPT], ids=["setup", "cron"])
def test_the_scripts_are_shellcheck_clean(script):
    proc = subprocess.run(
        [str(SHELLCHECK), "--shell=sh", "--severity=style", str(script)],
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
    assert site.changing_calls()[-1][:3] == ["option", "update", "storeplatform_seeded"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                    site.state["options"]["storeplatform_seeded"]["time"])
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
        f"--title={TITLE}",
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
    assert [c[:3] for c in site.changing_calls()] == [["wc", "product", "create"]] * 2 + [
        ["option", "update", "woocommerce_onboarding_profile"],
        ["option", "update", "storeplatform_seeded"],  # once everything is there
    ]
    assert_store_ready(site)


def test_an_installed_but_inactive_plugin_is_activated_not_downloaded_again(site):
    assert site.run_setup().returncode == 0
    site.set_state(plugins={"woocommerce": {"active": False, "version": "10.2.2"}})

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    assert [c[:3] for c in site.changing_calls()] == [["plugin", "activate", "woocommerce"]]


def test_a_page_the_owner_deleted_stays_deleted(site):
    assert site.run_setup().returncode == 0
    state = site.state
    cart = state["options"]["woocommerce_cart_page_id"]
    state["posts"][cart]["post_status"] = "trash"
    site.state_file.write_text(json.dumps(state))

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    assert site.changing_calls() == []
    assert site.state["posts"][cart]["post_status"] == "trash"


def test_later_runs_leave_what_the_owner_changed_and_ensure_what_the_platform_owns(site):
    assert site.run_setup().returncode == 0
    state = site.state
    # The owner deletes a sample product, renames the shop, turns cash on
    # delivery off, reopens "coming soon" and changes the permalinks ...
    gift = next(pid for pid, p in state["posts"].items() if p.get("sku") == "SP-GIFT-10")
    del state["posts"][gift]
    state["options"]["blogname"] = "Owner's own title"
    state["options"]["woocommerce_cod_settings"]["enabled"] = "no"
    state["options"]["woocommerce_coming_soon"] = "yes"
    state["options"]["permalink_structure"] = "/%year%/%postname%/"
    # ... and something breaks what the platform owns.
    state["options"]["home"] = "http://elsewhere.example"
    del state["users"]["owner"]
    site.state_file.write_text(json.dumps(state))
    owners = {k: v for k, v in state["options"].items() if k not in ("home", "siteurl")}

    # A retry, an upgrade (new chart version) or a rollback run the same script.
    proc = site.run_setup(SEED_VERSION="0.2.0")

    assert proc.returncode == 0, proc.stderr
    after = site.state
    assert {k: v for k, v in after["options"].items() if k not in ("home", "siteurl")} == owners
    assert "SP-GIFT-10" not in site.products()
    assert after["options"]["home"] == after["options"]["siteurl"] == ENV["STORE_URL"]
    assert after["users"]["owner"]["role"] == "administrator"
    # The site is moved back to its URL the way any move goes: search-replace.
    assert sorted(c[:3] for c in site.changing_calls()) == [
        ["search-replace", "http://elsewhere.example", ENV["STORE_URL"]],
        ["user", "create", "owner"],
    ]
    assert after["options"]["storeplatform_seeded"]["version"] == "0.1.0"  # the first seed


def test_an_upgrade_with_a_new_scheme_moves_the_url_and_keeps_the_owners_title(site):
    assert site.run_setup().returncode == 0
    site.title_file.write_text("Acme Shop 2")

    proc = site.run_setup(STORE_URL="https://acme-shop.example.com")

    assert proc.returncode == 0, proc.stderr
    assert [c[:3] for c in site.changing_calls()] == [
        ["search-replace", ENV["STORE_URL"], "https://acme-shop.example.com"]]
    assert_store_ready(site, url="https://acme-shop.example.com", title=TITLE)


def test_a_store_seeded_before_the_marker_existed_is_recorded_not_reseeded(site):
    assert site.run_setup().returncode == 0
    state = site.state
    del state["options"]["storeplatform_seeded"]  # as an earlier setup left it
    gift = next(pid for pid, p in state["posts"].items() if p.get("sku") == "SP-GIFT-10")
    del state["posts"][gift]
    site.state_file.write_text(json.dumps(state))

    proc = site.run_setup()

    assert proc.returncode == 0, proc.stderr
    assert [c[:3] for c in site.changing_calls()] == [
        ["option", "update", "storeplatform_seeded"]]
    assert "SP-GIFT-10" not in site.products()


def test_a_failing_look_up_of_the_seed_marker_stops_instead_of_reseeding(site):
    assert site.run_setup().returncode == 0
    site.set_state(fail=["option list"])

    proc = site.run_setup()

    assert proc.returncode != 0
    assert site.changing_calls() == []


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
    assert "gave up waiting for a complete wp-config.php" in proc.stdout
    assert site.calls == []


def test_it_waits_for_wp_config_to_be_written_completely(site):
    """The WordPress pod writes wp-config.php line by line while this Job
    may already look: a half-written file is waited for, not used."""
    site.wordpress_files_copied(HALF_WRITTEN_WP_CONFIG)
    setup = subprocess.Popen(
        ["sh", str(SCRIPT)], env=site.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        time.sleep(1.5)
        assert setup.poll() is None, setup.communicate()
        assert site.calls == [], "the setup used a half-written wp-config.php"
        site.wordpress_files_copied(WP_CONFIG)
        out, err = setup.communicate(timeout=30)
    finally:
        if setup.poll() is None:
            setup.kill()
    assert setup.returncode == 0, err
    assert "waiting for a complete wp-config.php" in out
    assert_store_ready(site)


def test_it_gives_up_on_a_wp_config_that_never_completes(site):
    site.wordpress_files_copied(HALF_WRITTEN_WP_CONFIG)

    proc = site.run_setup(WAIT_TIMEOUT="1")

    assert proc.returncode != 0
    assert "gave up waiting for a complete wp-config.php" in proc.stdout
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


# --- the title: a user's free text, passed as data ------------------------------

HOSTILE_TITLES = [
    "$(WORDPRESS_DB_PASSWORD)",
    "`id` shop",
    "$(id) shop",
    "'; rm -rf / #",
    # Would delete the canary below if any shell interpreted the title.
    "$(rm -f \"$HOME/canary\")",
    "x\"; rm -f ~/canary; \"",
    "\"double\" and 'single' quotes",
    "--require=/tmp/x.php",
    "two\nlines\n",
    "Café 🛒 emoji",
    "متجر عربي",
    "חנות ⁦mixed⁩ RTL",
    "back\\slash %s %n *",
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_a_hostile_title_becomes_the_site_title_exactly(site, tmp_path, title):
    site.title_file.write_text(title)
    canary = tmp_path / "canary"
    canary.write_text("still here")

    proc = site.run_setup(WORDPRESS_DB_PASSWORD="Sentinel-Db-Password-9f3k", HOME=str(tmp_path))

    assert proc.returncode == 0, proc.stderr
    [install] = [c for c in site.calls if c[:2] == ["core", "install"]]
    assert f"--title={title}" in install
    assert site.state["options"]["blogname"] == title
    assert "Sentinel-Db-Password-9f3k" not in json.dumps(site.state)
    assert canary.read_text() == "still here"


def test_an_empty_title_file_stops_the_setup_with_a_reason(site):
    site.title_file.write_text("")

    proc = site.run_setup()

    assert proc.returncode != 0
    assert "is empty" in proc.stdout
    assert site.calls == []


# --- the cron Job's script ---------------------------------------------------------


def test_the_cron_runs_due_events_and_the_action_scheduler_queue(site):
    assert site.run_setup().returncode == 0
    site.set_state(cron={"due": ["wc_cleanup_sessions", "woocommerce_cancel_unpaid_orders"],
                         "runs": 0},
                   action_scheduler={"pending": 250, "runs": 0})

    proc = site.run_cron()

    assert proc.returncode == 0, proc.stderr
    assert site.calls == [
        ["core", "is-installed"],
        ["cron", "event", "run", "--due-now"],
        ["plugin", "is-active", "woocommerce"],
        ["action-scheduler", "run", "--batches=5"],
    ]
    state = site.state
    assert state["cron"] == {"due": [], "runs": 1}
    assert state["action_scheduler"] == {"pending": 0, "runs": 1}
    assert "Executed a total of 2 cron events" in proc.stdout
    assert "250 scheduled tasks completed" in proc.stdout


def test_the_cron_works_off_a_long_queue_a_few_batches_a_minute(site):
    assert site.run_setup().returncode == 0
    site.set_state(action_scheduler={"pending": 700, "runs": 0})

    assert site.run_cron().returncode == 0
    assert site.state["action_scheduler"]["pending"] == 200
    assert site.run_cron().returncode == 0
    assert site.state["action_scheduler"]["pending"] == 0


def test_the_cron_has_nothing_to_do_before_the_shop_is_installed(site):
    proc = site.run_cron()

    assert proc.returncode == 0, proc.stderr
    assert site.calls == [["core", "is-installed"]]
    assert "not installed yet" in proc.stdout


def test_the_cron_has_nothing_to_do_before_wordpress_is_on_the_volume(site):
    site.wordpress_files_copied(HALF_WRITTEN_WP_CONFIG)

    proc = site.run_cron()

    assert proc.returncode == 0, proc.stderr
    assert site.calls == []


def test_the_cron_skips_the_action_scheduler_while_woocommerce_is_inactive(site):
    assert site.run_setup().returncode == 0
    site.set_state(plugins={"woocommerce": {"active": False, "version": "10.2.2"}})

    proc = site.run_cron()

    assert proc.returncode == 0, proc.stderr
    assert [c[0] for c in site.calls] == ["core", "cron", "plugin"]
    assert "WooCommerce is not active" in proc.stdout


def test_a_failing_cron_event_run_fails_the_job(site):
    assert site.run_setup().returncode == 0
    site.set_state(fail=["cron event"])

    proc = site.run_cron()

    assert proc.returncode != 0
    assert not any(c[0] == "action-scheduler" for c in site.calls)


@pytest.mark.parametrize(
    "argv",
    [
        ["cron", "event", "run", "--due"],
        ["cron", "event", "run", "--due-now", "--batches=5"],
        ["action-scheduler", "run", "--batch=5"],
    ],
)
def test_the_stand_in_refuses_flags_the_real_commands_do_not_take(site, argv):
    assert site.run_setup().returncode == 0

    proc = site.wp(*argv)

    assert proc.returncode == 1
    assert "Parameter errors:" in proc.stderr and "unknown --" in proc.stderr


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


# --- the warm pool (issue 13) -------------------------------------------------------
POOL_URL = "http://pool-k3x9q2m1ab.localtest.me"


@pytest.mark.parametrize("title", ["Acme Shop", 'Say "hi" \\ back', "--url=evil -x"])
def test_a_store_claimed_from_the_warm_pool_moves_and_takes_its_owners_title_once(site,
                                                                                 title):
    site.title_file.write_text("Warm pool store")
    built = site.run_setup(STORE_URL=POOL_URL, STORE_POOLED="true")
    assert built.returncode == 0, built.stderr
    assert site.state["options"]["storeplatform_pooled"] == "1"
    assert site.state["options"]["blogname"] == "Warm pool store"
    site.title_file.write_text(title)

    # The claim's upgrade: the owner's URL and name, no longer pooled.
    proc = site.run_setup(STORE_POOLED="false")

    assert proc.returncode == 0, proc.stderr
    assert [c[:3] for c in site.changing_calls()] == [
        ["search-replace", POOL_URL, ENV["STORE_URL"]],
        ["option", "update", "blogname"],
        ["option", "delete", "storeplatform_pooled"],
    ]
    assert "storeplatform_pooled" not in site.state["options"]
    assert_store_ready(site, title=title)

    again = site.run_setup(STORE_POOLED="false")
    assert again.returncode == 0, again.stderr
    assert site.changing_calls() == []  # from now on the title is the owner's


def test_a_pooled_store_keeps_its_marker_across_upgrades_in_the_pool(site):
    assert site.run_setup(STORE_URL=POOL_URL, STORE_POOLED="true").returncode == 0
    again = site.run_setup(STORE_URL=POOL_URL, STORE_POOLED="true")
    assert again.returncode == 0, again.stderr
    assert site.changing_calls() == []
    assert site.state["options"]["storeplatform_pooled"] == "1"
