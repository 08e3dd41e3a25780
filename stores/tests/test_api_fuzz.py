"""The API against its own OpenAPI schema: schemathesis, every check
(``--checks all``), a fixed seed and a bounded number of examples, against
the live server and its live /api/schema/. No 5xx, and every answer is one
the schema documents.

Where the schema cannot say everything, the run is told why:
- a cursor is opaque (only the links a page gives are valid), a store name
  has rules JSON Schema cannot state (whitespace folding, control
  characters, a web-address slug), so has a custom domain's host name
  (labels, a public suffix, not the platform's own), a revision must exist, a password must
  be right: schema-valid requests those refuse with 400 are expected;
- 413 is a rejection like 400;
- ``use_after_free`` is left out: DELETE /api/stores/{id}/ starts a
  deletion (202), and a store's record and timeline stay readable
  afterwards, by design (README, "API in one minute").
"""

import subprocess
import sys

import pytest

from stores import constants as c
from stores.models import ApiToken, Revision, Store

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEED = 14
MAX_EXAMPLES = 10

CONFIG = """
[parameters]
"path.id" = "{store_id}"
"path.store_pk" = "{store_id}"

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "429"]

[[operations]]
include-name = "GET /api/stores/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401"]

[[operations]]
include-name = "GET /api/stores/{{id}}/events/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404"]

[[operations]]
include-name = "POST /api/auth/token/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "429"]

[[operations]]
include-name = "POST /api/stores/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "409", "429"]

[[operations]]
include-name = "POST /api/stores/{{store_pk}}/domains/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "409"]

# Webhook endpoints have integer ids (none exists here: each answers 404).
[[operations]]
include-path-regex = "^/api/webhooks/"
parameters = {{ "path.id" = "1", "path.delivery_id" = "1" }}

# An endpoint URL must be https on a public address, checked in DNS.
[[operations]]
include-name = "POST /api/webhooks/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "409"]

[[operations]]
include-name = "PATCH /api/webhooks/{{id}}/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409"]

# Backups (issue 12): a cursor is opaque; object storage is not configured
# here, which a schema-valid request is told with a 400 naming the setting.
[[operations]]
include-name = "GET /api/stores/{{store_pk}}/backups/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404"]

[[operations]]
include-name = "POST /api/stores/{{store_pk}}/backups/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "409"]

[[operations]]
include-name = "POST /api/stores/{{id}}/clone/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409", "429"]

[[operations]]
include-name = "POST /api/stores/{{id}}/rollback/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"""


def test_the_api_keeps_every_promise_of_its_schema(live_server, user, tmp_path):
    store = Store.objects.create(owner=user, name="Fuzzed", slug="fuzzed",
                                 host="fuzzed.localtest.me", engine="woocommerce",
                                 status=c.READY, helm_revision=2)
    for number in (1, 2):
        Revision.objects.create(store=store, number=number, chart="woocommerce-0.1.0",
                                status="deployed" if number == 2 else "superseded")
    _, token = ApiToken.objects.create(user=user, expiry=None, name="fuzz")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(store_id=store.id))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{live_server.url}/api/schema/?format=json", "--url", live_server.url,
        "--checks", "all", "--exclude-checks", "use_after_free",
        "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
        "--header", f"Authorization: Token {token}", "--no-color",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900,
                          cwd=tmp_path)  # schemathesis keeps a cache folder there
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, report
    assert "No issues found" in proc.stdout or " passed" in proc.stdout, report
