"""The API docs say what each operation is for: a summary and a
description on every store operation, in the schema and on /api/docs/."""

import pytest

from stores.tests.browsing import open_page

pytestmark = pytest.mark.django_db


def test_every_store_operation_has_a_summary_and_a_description(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operations = {
        f"{method.upper()} {path}": operation
        for path, methods in schema["paths"].items() if path.startswith("/api/stores/")
        for method, operation in methods.items()
    }
    assert len(operations) == 23  # 13 on stores, 6 on their domains, 4 on their backups
    missing = [name for name, op in operations.items()
               if not op.get("summary") or len(op.get("description", "")) < 40]
    assert missing == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_interactive_docs_show_what_each_operation_does(chromium, live_server, user):
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector("text=Create a store")
    for summary in ("List your stores", "Delete a store", "Roll a store back",
                    "Get the store's admin login"):
        assert page.get_by_text(summary).count() == 1
