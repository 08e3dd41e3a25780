"""Staff is not an operator licence: acting on someone else's store through
the API takes the matching model permission, as in admin. Without it a
staff user is an ordinary owner; credentials are the owner's alone."""

import pytest
from django.contrib.auth.models import Permission

from conftest import _token_client
from stores import constants as c
from stores.models import AuditEntry, Revision, Store

pytestmark = pytest.mark.django_db


def make_store(owner, name="Theirs", status=c.READY):
    store = Store.objects.create(owner=owner, name=name, slug=name.lower(),
                                 host=f"{name.lower()}.localtest.me", engine="woocommerce",
                                 status=status, helm_revision=2)
    Revision.objects.create(store=store, number=1, status="superseded", chart="woocommerce-0.1.0")
    Revision.objects.create(store=store, number=2, status="deployed", chart="woocommerce-0.1.0")
    return store


def staff_with(django_user_model, name, *codenames):
    user = django_user_model.objects.create_user(name, password=f"{name}-password-1",
                                                 is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="stores",
                                                        codename__in=codenames))
    return user


@pytest.fixture
def theirs(other_user):
    return make_store(other_user)


@pytest.fixture
def bare_staff(django_user_model):
    return _token_client(staff_with(django_user_model, "bare"))


@pytest.fixture
def viewer(django_user_model):
    return _token_client(staff_with(django_user_model, "viewer", "view_store"))


def act_on(client, store):
    """Every API door onto one store, with its status code."""
    base = f"/api/stores/{store.id}/"
    return {
        "retrieve": client.get(base).status_code,
        "events": client.get(f"{base}events/").status_code,
        "revisions": client.get(f"{base}revisions/").status_code,
        "credentials": client.get(f"{base}credentials/").status_code,
        "upgrade": client.post(f"{base}upgrade/").status_code,
        "rollback": client.post(f"{base}rollback/", {"revision": 1}, format="json").status_code,
        "retry": client.post(f"{base}retry/").status_code,
        "destroy": client.delete(base).status_code,
    }


def test_staff_without_permissions_is_an_ordinary_owner(bare_staff, theirs):
    assert bare_staff.get("/api/stores/").json()["results"] == []
    assert set(act_on(bare_staff, theirs).values()) == {404}
    theirs.refresh_from_db()
    assert theirs.status == c.READY
    assert not AuditEntry.objects.exists()


def test_staff_with_view_only_sees_but_cannot_act(viewer, theirs):
    listed = [s["id"] for s in viewer.get("/api/stores/").json()["results"]]
    assert listed == [theirs.id]
    codes = act_on(viewer, theirs)
    assert codes == {"retrieve": 200, "events": 200, "revisions": 200, "credentials": 404,
                     "upgrade": 403, "rollback": 403, "retry": 403, "destroy": 403}
    refused = viewer.post(f"/api/stores/{theirs.id}/upgrade/").json()["detail"]
    assert "stores.upgrade_store" in refused
    theirs.refresh_from_db()
    assert theirs.status == c.READY


def test_each_action_takes_its_own_permission(django_user_model, theirs):
    upgrader = _token_client(staff_with(django_user_model, "upgrader", "view_store",
                                        "upgrade_store"))
    assert upgrader.post(f"/api/stores/{theirs.id}/upgrade/").status_code == 202
    assert upgrader.delete(f"/api/stores/{theirs.id}/").status_code == 403
    assert Store.objects.get(pk=theirs.id).status == c.UPGRADING


def test_a_permission_without_staff_status_opens_nothing(django_user_model, other_user, theirs):
    # Admin requires is_staff too: the API applies the same rule.
    user = django_user_model.objects.create_user("carol", password="carol-password-1")
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_store",
                                                                      "delete_store"]))
    client = _token_client(user)
    assert client.get(f"/api/stores/{theirs.id}/").status_code == 404


def test_a_superuser_may_act_on_any_store_but_not_read_its_credentials(staff_api, theirs):
    codes = act_on(staff_api, theirs)
    assert codes["retrieve"] == 200 and codes["events"] == 200
    assert codes["credentials"] == 404
    assert codes["upgrade"] == 202
    assert codes["destroy"] == 202
    assert Store.objects.get(pk=theirs.id).status == c.DELETING
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {"upgraded", "deleted"}


def test_owners_keep_every_action_on_their_own_stores(api, user):
    mine = make_store(user, "Mine")
    codes = act_on(api, mine)
    assert codes["retrieve"] == 200 and codes["upgrade"] == 202
    assert codes["credentials"] == 409  # never provisioned: no credentials yet


# --- admin asks the same permissions ------------------------------------------


def test_admin_actions_need_the_same_permissions(client, django_user_model, theirs):
    viewer = staff_with(django_user_model, "viewer", "view_store")
    client.force_login(viewer)
    page = client.get("/admin/stores/store/")
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action at all: viewing only
    client.post("/admin/stores/store/", {"action": "upgrade_stores",
                                         "_selected_action": [theirs.id]})
    assert Store.objects.get(pk=theirs.id).status == c.READY

    operator = staff_with(django_user_model, "operator", "view_store", "upgrade_store")
    client.force_login(operator)
    actions = [value for value, _ in
               client.get("/admin/stores/store/").context["action_form"].fields["action"].choices]
    assert actions == ["", "upgrade_stores", "fleet_upgrade"]
    client.post("/admin/stores/store/", {"action": "upgrade_stores",
                                         "_selected_action": [theirs.id]})
    assert Store.objects.get(pk=theirs.id).status == c.UPGRADING
