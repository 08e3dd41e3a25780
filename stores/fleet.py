"""Fleet upgrades: move every running store of an engine to the platform's
current chart version, canary first, then in batches, stopping at the first
failure.

A run is a row (``FleetUpgrade``) advanced one step at a time by
``advance()``: start the next batch, or check on the one in flight. Beat
advances every running run each reconcile period (``advance_running``), so
a run started from the admin or by ``manage.py upgrade_fleet`` goes on after
the page or the command is gone; the command also advances it in its own
loop to show a progress bar. Either way the run survives a restart, and
starting a new run resumes where an earlier one stopped, because stores
already on the target version are not picked again.

Suspended stores are upgraded too and stay suspended (issue 13): the chart
is what changes, the values switch ``suspended`` is kept.

Fleet upgrades are a service (they request upgrades like a person does,
with the same rules and audit), so they live here, above provisioning.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from provisioning.engines import get_engine
from stores import constants as c
from stores import services
from stores.models import FleetUpgrade, Store

log = logging.getLogger(__name__)

# Where an upgraded store ends up (c.FLEET_UPGRADE_STATES: which it moves).
UPGRADED_STATES = frozenset({c.READY, c.SUSPENDED, c.POOLED})


def pending(engine: str, target: str):
    """Running stores of the engine (its warm pool and its suspended stores
    too) not yet on the target chart version."""
    return (
        Store.objects.filter(engine=engine, status__in=list(c.FLEET_UPGRADE_STATES))
        .exclude(chart_version=target)
        .order_by("created_at", "id")
    )


def start(engine: str, actor: services.Actor, *, batch_size: int = 5,
          canary: int = 1) -> FleetUpgrade:
    target = get_engine(engine).chart_version
    todo = list(pending(engine, target).values_list("id", flat=True))
    run = FleetUpgrade.objects.create(
        engine=engine, target_version=target, batch_size=max(1, batch_size),
        canary=max(1, canary), total=len(todo), remaining=todo, created_by=actor.user,
    )
    services.audit(actor, "fleet_upgrade", "", engine=engine, target=target, stores=run.total,
                   run=run.pk)
    return run


def stop(run: FleetUpgrade, actor: services.Actor) -> bool:
    """Stop a running run: batches in flight finish, no new ones start."""
    stopped = FleetUpgrade.objects.filter(pk=run.pk, status=FleetUpgrade.RUNNING).update(
        status=FleetUpgrade.STOPPED, finished_at=timezone.now())
    if stopped:
        services.audit(actor, "fleet_upgrade_stopped", "", run=run.pk, engine=run.engine)
    return bool(stopped)


@shared_task(ignore_result=True)
def advance_running() -> int:
    """Advance every running fleet upgrade by one step (beat, each reconcile
    period). Returns how many runs are still running."""
    running = 0
    for run in FleetUpgrade.objects.filter(status=FleetUpgrade.RUNNING).select_related(
        "created_by"
    ):
        actor = services.Actor(run.created_by, via="fleet")
        if advance(run, actor).status == FleetUpgrade.RUNNING:
            running += 1
    return running


def advance(run: FleetUpgrade, actor: services.Actor) -> FleetUpgrade:
    """One step: check the batch in flight, then start the next one."""
    with transaction.atomic():
        run = FleetUpgrade.objects.select_for_update().get(pk=run.pk)
        if run.status != FleetUpgrade.RUNNING:
            return run
        if run.current:
            states = dict(Store.objects.filter(pk__in=run.current).values_list("id", "status"))
            if any(states.get(i) == c.UPGRADING for i in run.current):
                return run  # still in flight
            for store_id in run.current:
                store = Store.objects.get(pk=store_id)
                # An upgraded store goes back to where it was: ready,
                # suspended (still paused) or pooled.
                if (store.status in UPGRADED_STATES
                        and store.chart_version == run.target_version):
                    run.upgraded.append(store_id)
                else:
                    run.failed.append({"store": store_id, "status": store.status,
                                       "reason": store.status_reason,
                                       "message": store.status_message})
            run.current = []
            if run.failed:
                run.status = FleetUpgrade.STOPPED
                run.finished_at = timezone.now()
                run.save()
                log.warning("fleet upgrade %s stopped: %s", run.pk, run.failed)
                return run
        if not run.remaining:
            run.status = FleetUpgrade.DONE
            run.finished_at = timezone.now()
            run.save()
            return run
        size = run.canary if not run.upgraded and not run.skipped else run.batch_size
        batch, run.remaining = run.remaining[:size], run.remaining[size:]
        for store_id in batch:
            store = Store.objects.get(pk=store_id)
            if (store.status not in c.FLEET_UPGRADE_STATES
                    or store.chart_version == run.target_version):
                run.skipped.append(store_id)  # deleted, failed or already done meanwhile
                continue
            try:
                services.upgrade_store(actor, store)
                run.current.append(store_id)
            except services.StoreRequestError as exc:
                run.skipped.append(store_id)
                log.info("fleet upgrade %s skipped %s: %s", run.pk, store_id, exc.message)
        run.save()
    return run
