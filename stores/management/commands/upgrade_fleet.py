"""Upgrade every running store of an engine to the current chart version.

    python manage.py upgrade_fleet woocommerce --batch-size 5 --canary 1

Canary first, then batches; stops at the first failure with a report.
Run it again to resume: stores already on the target version are skipped.
"""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from provisioning.engines import ENGINES
from stores import fleet
from stores.models import FleetUpgrade
from stores.services import Actor


class Command(BaseCommand):
    help = "Upgrade all running stores of an engine, canary first, in batches."

    def add_arguments(self, parser):
        parser.add_argument("engine", choices=sorted(ENGINES))
        parser.add_argument("--batch-size", type=int, default=5)
        parser.add_argument("--canary", type=int, default=1)
        parser.add_argument("--poll", type=float, default=2.0, help="seconds between checks")
        parser.add_argument("--timeout", type=float, default=3600,
                            help="give up waiting after this many seconds")
        parser.add_argument("--dry-run", action="store_true", help="list, change nothing")

    def handle(self, engine, batch_size, canary, poll, timeout, dry_run, **options):
        target = ENGINES[engine].chart_version
        todo = list(fleet.pending(engine, target).values_list("id", "chart_version"))
        self.stdout.write(f"{len(todo)} {engine} store(s) to move to chart {target}.")
        if dry_run:
            for store_id, version in todo:
                self.stdout.write(f"  {store_id}  {version or '?'} -> {target}")
            return
        actor = Actor(None, via="cli")
        run = fleet.start(engine, actor, batch_size=batch_size, canary=canary)
        deadline = time.monotonic() + timeout
        with tqdm(total=run.total, unit="store", desc=f"{engine} -> {target}",
                  disable=run.total == 0) as bar:
            while run.status == FleetUpgrade.RUNNING:
                run = fleet.advance(run, actor)
                bar.n = run.done_count
                bar.refresh()
                if run.status != FleetUpgrade.RUNNING:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"Stopped watching after {timeout:.0f}s; run {run.pk} "
                                       "goes on (beat advances it every reconcile period).")
                time.sleep(poll)
        self._report(run)
        if run.status == FleetUpgrade.STOPPED:
            raise CommandError("Stopped at the first failure; fix it, then re-run to resume.")

    def _report(self, run: FleetUpgrade) -> None:
        self.stdout.write(f"Run {run.pk}: {run.status}. upgraded {len(run.upgraded)}, "
                          f"skipped {len(run.skipped)}, failed {len(run.failed)}, "
                          f"not started {len(run.remaining)}.")
        for failure in run.failed:
            self.stdout.write(self.style.ERROR(
                f"  {failure['store']}: {failure['status']} {failure['reason']} "
                f"{failure['message']}"))
