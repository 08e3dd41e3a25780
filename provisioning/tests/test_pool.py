"""The warm pool (issue 13): beat keeps pooled stores built per engine, a
create claims one, and the claim renames it through the URL-change step.

Through the fake helm and the fake cluster: pooled stores are provisioned by
the real ``provision`` operation and claimed by the real ``claim`` one."""

import threading

import pytest
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.test import APIClient

from provisioning import kube, tasks
from provisioning.engines import get_engine
from provisioning.tests.test_reliability import left_by_a_dead_worker
from provisioning.tests.test_suspend import ingress_backends, workloads
from stores import constants as c
from stores import fleet, pool, services
from stores.models import PoolPolicy, Store, StoreCredentials

pytestmark = pytest.mark.django_db

WOO = "woocommerce"


def fill(eager, times: int = 1) -> None:
    """Run beat's pool task ``times`` times, its builds in this process."""
    for _ in range(times):
        with eager():
            pool.maintain()


def pooled() -> list[Store]:
    return list(Store.objects.filter(owner__isnull=True, status=c.POOLED))


def create(client, name="Acme Shop"):
    return client.post("/api/stores/", {"name": name, "engine": WOO}, format="json")


def setup_job(cluster, store) -> dict:
    jobs = cluster.fake.cluster.list("jobs", store.namespace, "")
    job = max(jobs, key=lambda j: j["metadata"]["name"])  # the latest revision's
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def title_file(cluster, store) -> str:
    maps = cluster.fake.cluster.list("configmaps", store.namespace, "")
    wpcli = next(m for m in maps if m["metadata"]["name"].endswith("-wpcli"))
    return wpcli["data"]["store-name"]


def namespace_labels(cluster, store) -> dict:
    found = cluster.fake.namespaces(f"{c.LABEL_STORE_ID}={store.id}")
    return found[0]["metadata"]["labels"]


def test_beat_fills_the_pool_to_its_size_and_no_more(cluster, eager, settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 2
    assert django_settings.CELERY_BEAT_SCHEDULE["maintain-warm-pool"]["task"] == \
        "stores.pool.maintain"

    fill(eager, times=4)  # one build at a time (STORE_POOL_REFILL_CONCURRENCY=1)

    stores = pooled()
    assert len(stores) == 2
    assert Store.objects.exclude(status=c.POOLED).count() == 0
    for store in stores:
        assert store.name == pool.POOLED_NAME and store.host == f"pool-{store.id}.localtest.me"
        assert store.chart_version == get_engine(WOO).chart_version
        assert namespace_labels(cluster, store)[c.LABEL_OWNER] == ""
        assert StoreCredentials.objects.filter(store=store).exists()
        assert store.events.filter(status_to=c.POOLED).exists()


def test_a_pool_policy_row_overrides_the_setting_and_a_smaller_size_trims(cluster, eager,
                                                                          settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 0
    settings.STORE_POOL_REFILL_CONCURRENCY = 3
    PoolPolicy.objects.create(engine=WOO, size=3)
    fill(eager)
    assert len(pooled()) == 3

    PoolPolicy.objects.filter(engine=WOO).update(size=1)
    fill(eager)
    assert len(pooled()) == 1
    assert Store.objects.filter(owner__isnull=True, status=c.DELETED).count() == 2
    assert cluster.managed_namespaces() == [pooled()[0].namespace]


def test_a_create_gets_the_pooled_store_under_its_own_name_and_host(api, user, cluster,
                                                                    eager, settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager)
    [waiting] = pooled()
    assert setup_job(cluster, waiting)["STORE_URL"] == f"http://{waiting.host}"
    assert setup_job(cluster, waiting)["STORE_POOLED"] == "true"
    assert title_file(cluster, waiting) == pool.POOLED_NAME

    with eager():
        response = create(api)
    assert response.status_code == 202
    assert (response.json()["id"], response.json()["status"]) == (waiting.id, c.CLAIMING)

    store = Store.objects.get(pk=waiting.id)
    assert store.status == c.READY, store.status_message
    assert (store.owner, store.name, store.host) == (user, "Acme Shop", "acme-shop.localtest.me")
    assert store.ready_at is not None
    messages = list(store.events.values_list("message", flat=True))
    assert any(m.startswith("Came from the warm pool") for m in messages)
    statuses = list(store.events.filter(kind=c.EVENT_STATUS).values_list("status_to", flat=True))
    assert statuses[-3:] == [c.POOLED, c.CLAIMING, c.READY]
    # One helm upgrade with the real values: the ingress answers at the new
    # host, the setup Job moves the site there (setup.sh's search-replace, see
    # test_woocommerce_setup.py) and takes the owner's title.
    served = {i["spec"]["rules"][0]["host"]
              for i in cluster.fake.cluster.list("ingresses", store.namespace, "")}
    assert served == {"acme-shop.localtest.me"}
    env = setup_job(cluster, store)
    assert env["STORE_URL"] == "http://acme-shop.localtest.me"
    assert env["STORE_POOLED"] == "false"
    assert title_file(cluster, store) == "Acme Shop"
    assert namespace_labels(cluster, store)[c.LABEL_OWNER] == str(user.pk)
    # The credentials made for the pooled store are the owner's now.
    assert api.get(f"/api/stores/{store.id}/credentials/").status_code == 200

    # The claim asked for a refill at once (not only at beat's next run).
    assert len(pooled()) == 1 and pooled()[0].id != store.id


def test_a_claim_whose_worker_died_is_resumed_by_the_reconciler(api, cluster, eager,
                                                                settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager)
    [waiting] = pooled()
    assert create(api).json()["status"] == c.CLAIMING  # requested; no worker ran it
    left_by_a_dead_worker(waiting.id, c.CLAIMING, c.OP_CLAIM)
    with eager():
        assert tasks.reconcile()["resumed"] == 1
    store = Store.objects.get(pk=waiting.id)
    assert store.status == c.READY, store.status_message
    assert store.host == "acme-shop.localtest.me"
    assert store.events.filter(reason=c.REASON_WORKER_LOST).exists()


def test_a_claim_relabels_the_namespace_in_one_call_and_recreates_a_missing_one(
        api, user, cluster, eager, settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 2
    fill(eager, times=2)
    first, second = sorted(pooled(), key=lambda s: (s.created_at, s.id))
    seen = len(cluster.fake.cluster.requests)
    with eager():
        create(api, "First Shop")
    claimed = Store.objects.get(owner=user, name="First Shop")
    assert claimed.status == c.READY, claimed.status_message
    # The calls on the namespace (helm reads it afterwards): creating first
    # would be a refused POST, then a GET and a PATCH.
    calls = [method for method, path in cluster.fake.cluster.requests[seen:]
             if path == f"/api/v1/namespaces/{first.namespace}"]
    assert calls[0] == "PATCH" and calls.count("PATCH") == 1, calls
    assert namespace_labels(cluster, claimed)[c.LABEL_OWNER] == str(user.pk)

    assert claimed.id == first.id  # the oldest first

    # Someone deleted the next pooled store's namespace since it was built:
    # its claim creates it again, and helm brings the store back into it.
    cluster.fake.cluster.objects.pop(("namespaces", "", second.namespace))
    with eager():
        create(api, "Second Shop")
    store = Store.objects.get(pk=second.id)
    assert store.status == c.READY, store.status_message
    assert namespace_labels(cluster, store)[c.LABEL_OWNER] == str(user.pk)


def test_a_claim_of_a_store_whose_namespace_is_terminating_fails_saying_so(
        api, user, cluster, eager, settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager)
    [waiting] = pooled()
    cluster.fake.faults["stuck_namespaces"] = {waiting.namespace}
    cluster.fake.cluster.delete("namespaces", "", waiting.namespace)
    with eager():
        create(api)
    store = Store.objects.get(pk=waiting.id)
    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_NAMESPACE_STUCK)
    assert "still terminating" in store.status_message


def test_without_a_pooled_store_a_create_goes_the_cold_way(api, cluster, eager, settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1  # nothing built yet
    with eager():
        response = create(api)
    store = Store.objects.get(pk=response.json()["id"])
    assert (store.status, store.operation) == (c.READY, c.OP_PROVISION)
    assert not store.events.filter(message__startswith="Came from the warm pool").exists()


@pytest.mark.parametrize("suspended", [False, True], ids=["running", "suspended"])
def test_a_stale_pooled_store_is_replaced_not_handed_out(suspended, api, cluster, eager,
                                                         settings, request):
    if suspended:
        request.getfixturevalue("suspended_pool")
    waiting = waiting_suspended if suspended else pooled
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager, times=2)  # built (then suspended)
    [stale] = waiting()
    # The platform's chart moved on since the store was built.
    Store.objects.filter(pk=stale.id).update(chart_version="0.0.1")

    with eager():
        response = create(api)
    assert response.json()["id"] != stale.id
    assert Store.objects.get(pk=response.json()["id"]).operation == c.OP_PROVISION

    fill(eager, times=2)  # replaced (then its replacement suspended)
    stale.refresh_from_db()
    assert stale.status == c.DELETED
    [fresh] = waiting()
    assert fresh.chart_version == get_engine(WOO).chart_version


def test_a_claim_that_fails_keeps_the_users_store_and_the_pool_builds_a_replacement(
        api, user, cluster, eager, settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager)
    [waiting] = pooled()
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom", "times": 9})
    with eager():
        create(api)
    store = Store.objects.get(pk=waiting.id)
    assert (store.status, store.operation, store.owner) == (c.FAILED, c.OP_CLAIM, user)

    cluster.helm_faults()
    fill(eager)  # the broken one is the user's now: the pool builds another
    assert [s.id for s in pooled()] != [waiting.id] and len(pooled()) == 1
    with eager():
        assert api.post(f"/api/stores/{store.id}/retry/").json()["status"] == c.CLAIMING
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert store.host == "acme-shop.localtest.me"


@pytest.mark.parametrize("status", [c.POOLED, c.SUSPENDED])
def test_pooled_stores_are_invisible_to_users_and_not_counted_in_quotas(
        api, staff_api, user, settings, status):
    settings.STORE_MAX_PER_USER = 1
    stores = [_pooled_row(status=status) for _ in range(2)]

    assert api.get("/api/stores/").json()["results"] == []
    assert api.get(f"/api/stores/{stores[0].id}/").status_code == 404
    listed = {s["id"]: s for s in staff_api.get("/api/stores/").json()["results"]}
    assert set(listed) == {s.id for s in stores} and listed[stores[0].id]["owner"] is None
    # Nobody sees a pooled store's credentials, operators included.
    assert staff_api.get(f"/api/stores/{stores[0].id}/credentials/").status_code == 404

    assert create(api).status_code == 202  # claims one of the two
    response = create(api, "Second Shop")
    assert response.status_code == 409
    assert "1 of your 1 allowed stores" in response.json()["detail"]


def test_the_admin_lists_pooled_stores_under_their_filter_and_deletes_them(client, staff):
    store = _pooled_row()
    client.force_login(staff)
    page = client.get("/admin/stores/store/?pool=yes")
    assert page.status_code == 200 and store.id in page.content.decode()
    assert store.id not in client.get("/admin/stores/store/?pool=no").content.decode()
    client.post("/admin/stores/store/", {"action": "delete_stores",
                                         "_selected_action": [store.id]})
    store.refresh_from_db()
    assert store.status == c.DELETING


def test_the_admin_edits_the_pool_size_per_engine(client, staff):
    client.force_login(staff)
    response = client.post("/admin/stores/poolpolicy/add/", {"engine": WOO, "size": 4})
    assert response.status_code == 302
    assert pool.target_size(WOO) == 4
    assert client.get("/admin/stores/poolpolicy/").status_code == 200


def test_a_pooled_stores_timeline_notifies_no_one(user):
    from stores import notifications
    from stores.models import OutgoingEmail, StoreEvent

    user.email = "alice@example.com"
    user.save()
    store = _pooled_row()
    StoreEvent.objects.create(store=store, kind=c.EVENT_STATUS, status_from=c.PROVISIONING,
                              status_to=c.FAILED, message="A pool build failed.")
    notifications.fan_out()  # no owner to tell, and no crash over it
    assert not OutgoingEmail.objects.exists()


@pytest.mark.parametrize("status", [c.POOLED, c.SUSPENDED])
def test_fleet_upgrades_include_pooled_stores(status):
    store = _pooled_row(chart_version="0.0.1", status=status)
    assert list(fleet.pending(WOO, get_engine(WOO).chart_version)) == [store]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", [c.POOLED, c.SUSPENDED])
def test_twenty_simultaneous_creates_with_a_pool_of_five_claim_each_once(django_user_model,
                                                                         status):
    from conftest import api_token

    waiting = {_pooled_row(status=status).id for _ in range(5)}
    tokens = [api_token(django_user_model.objects.create_user(f"racer{n}")) for n in range(20)]
    barrier = threading.Barrier(20)
    answers = []

    def post(n):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[n]}")
        barrier.wait()
        try:
            answers.append(create(client, f"Race {n}").json())
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    claimed = [a["id"] for a in answers if a["status"] == c.CLAIMING]
    cold = [a["id"] for a in answers if a["status"] == c.REQUESTED]
    assert len(answers) == 20
    assert sorted(claimed) == sorted(waiting)  # exactly the five, none twice
    assert len(cold) == 15 and not set(cold) & waiting
    owners = Store.objects.filter(pk__in=waiting).values_list("owner_id", flat=True)
    assert len(set(owners)) == 5 and None not in owners
    assert not Store.objects.filter(owner__isnull=True).exists()
    # Every claim turned the values switch off: its upgrade resumes the store.
    assert not Store.objects.filter(pk__in=waiting, suspended=True).exists()


# -- pooled stores kept suspended (STORE_POOL_SUSPENDED) ---------------------------------
@pytest.fixture
def suspended_pool(settings):
    settings.STORE_POOL_SUSPENDED = True
    settings.STORE_PAUSED_BACKEND = "storeplatform-web.storeplatform.svc.cluster.local"


def waiting_suspended() -> list[Store]:
    return list(Store.objects.filter(owner__isnull=True, status=c.SUSPENDED))


def test_with_the_pool_suspended_beat_builds_pooled_stores_then_suspends_them(
        api, cluster, eager, settings, suspended_pool):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 2
    settings.STORE_POOL_REFILL_CONCURRENCY = 2
    fill(eager)  # builds both
    assert len(pooled()) == 2
    fill(eager)  # suspends both
    stores = waiting_suspended()
    assert len(stores) == 2 and not pooled()
    for store in stores:
        assert store.suspended and store.owner is None and store.helm_revision == 2
        assert statuses(store)[-3:] == [c.POOLED, c.SUSPENDING, c.SUSPENDED]
        assert store.status_message.startswith("The store waits in the warm pool, suspended")
        replicas = workloads(cluster, store)
        assert replicas and set(replicas.values()) == {0}
        assert ingress_backends(cluster, store) == {f"{store.release}-paused"}
        assert kube.release_status(store.namespace, store.release) == "deployed"
    # They are the pool: nothing more is built, and users see none of them.
    fill(eager)
    assert Store.objects.count() == 2
    assert pool.pool_of(WOO).count() == 2
    assert api.get("/api/stores/").json()["results"] == []


def test_a_create_claims_a_suspended_pooled_store_and_its_claim_resumes_it(
        api, user, cluster, eager, settings, suspended_pool):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager, times=2)
    [waiting] = waiting_suspended()

    with eager():
        response = create(api)
    assert (response.json()["id"], response.json()["status"]) == (waiting.id, c.CLAIMING)

    store = Store.objects.get(pk=waiting.id)
    assert store.status == c.READY, store.status_message
    assert (store.owner, store.name, store.host) == (user, "Acme Shop", "acme-shop.localtest.me")
    assert not store.suspended
    assert statuses(store)[-5:] == [c.POOLED, c.SUSPENDING, c.SUSPENDED, c.CLAIMING, c.READY]
    came = store.events.get(status_to=c.CLAIMING).message
    assert came.startswith("Came from the warm pool") and "kept suspended is resumed" in came
    assert "resumed" in store.status_message
    # One helm upgrade resumed and renamed it (install, suspend, claim), its
    # pods waited for and its storefront probed.
    assert store.helm_revision == 3
    claimed = store.events.filter(pk__gt=store.events.get(status_to=c.CLAIMING).pk)
    steps = list(claimed.filter(kind=c.EVENT_STEP).values_list("step", flat=True))
    assert steps.count("Resuming the store at its name and address") == 1
    assert steps[-1] == "Waiting for the storefront"
    assert set(workloads(cluster, store).values()) == {1}
    assert ingress_backends(cluster, store) == {f"{store.release}-wordpress"}
    assert setup_job(cluster, store)["STORE_URL"] == "http://acme-shop.localtest.me"
    assert title_file(cluster, store) == "Acme Shop"
    assert namespace_labels(cluster, store)[c.LABEL_OWNER] == str(user.pk)
    # The claim asked for a refill: a new pooled store, suspended at beat's next run.
    [refill] = pooled()
    fill(eager)
    assert [s.id for s in waiting_suspended()] == [refill.id]


def test_a_suspended_pooled_store_is_resumed_by_its_claim_not_by_an_operator(staff_api):
    store = _pooled_row(status=c.SUSPENDED)
    response = staff_api.post(f"/api/stores/{store.id}/resume/")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "This store waits in the warm pool: the create that claims it resumes it.")
    store.refresh_from_db()
    assert store.status == c.SUSPENDED


def test_a_running_pooled_store_is_claimed_before_a_suspended_one(api):
    _pooled_row(status=c.SUSPENDED)  # older
    running = _pooled_row()
    response = create(api)
    assert response.json()["id"] == running.id


def test_a_fleet_upgrade_of_a_suspended_pooled_store_leaves_it_suspended_and_claimable(
        api, cluster, eager, settings, suspended_pool):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager, times=2)
    [store] = waiting_suspended()
    current = store.chart_version
    Store.objects.filter(pk=store.id).update(chart_version="0.0.1")  # built on an older chart
    assert [s.id for s in fleet.pending(WOO, current)] == [store.id]
    with eager():  # what each fleet batch calls
        services.upgrade_store(services.Actor(None, via="fleet"), store)
    store.refresh_from_db()
    assert (store.status, store.chart_version, store.owner) == (c.SUSPENDED, current, None)
    assert statuses(store)[-2:] == [c.UPGRADING, c.SUSPENDED]
    assert set(workloads(cluster, store).values()) == {0}
    with eager():
        assert create(api).json()["id"] == store.id
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message


def test_a_pooled_store_whose_suspend_failed_is_replaced(cluster, eager, settings,
                                                        suspended_pool):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager)
    [broken] = pooled()
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom", "times": 9})
    fill(eager)
    broken.refresh_from_db()
    assert (broken.status, broken.operation) == (c.FAILED, c.OP_SUSPEND)
    cluster.helm_faults()
    fill(eager, times=2)  # replaced and rebuilt, then the new one suspended
    broken.refresh_from_db()
    assert broken.status == c.DELETED
    [fresh] = waiting_suspended()
    assert fresh.id != broken.id


def test_the_pool_never_suspends_a_store_claimed_since_it_was_read(api, user, cluster, eager,
                                                                   settings):
    settings.STORE_POOL_SIZE_WOOCOMMERCE = 1
    fill(eager)
    [read_by_the_pool] = pooled()
    with eager():
        create(api)
    with pytest.raises(services.StoreRequestError):
        services.suspend_store(pool.ACTOR, read_by_the_pool)  # a stale read: owner None
    store = Store.objects.get(pk=read_by_the_pool.id)
    assert (store.status, store.owner, store.suspended) == (c.READY, user, False)


def statuses(store) -> list[str]:
    return list(store.events.filter(kind=c.EVENT_STATUS).values_list("status_to", flat=True))



def _pooled_row(chart_version: str | None = None, status: str = c.POOLED) -> Store:
    """A pooled store as the provision operation leaves it, or the suspend
    operation (``status`` suspended), for tests that need no cluster:
    visibility, quotas, the claim race."""
    store = Store.objects.create(owner=None, name=pool.POOLED_NAME, engine=WOO,
                                 status=status, suspended=status == c.SUSPENDED,
                                 helm_revision=1,
                                 chart_version=chart_version or get_engine(WOO).chart_version)
    Store.objects.filter(pk=store.id).update(slug=f"pool-{store.id}",
                                             host=f"pool-{store.id}.localtest.me")
    store.refresh_from_db()
    return store
