"""Load everything the image's processes load, allowing only the runtime lock.

Run as a script by test_declared_imports.py, with a production environment
(DJANGO_DEBUG=false and a database URL). An import guard placed first on
sys.meta_path refuses every top-level module that an installed distribution
provides unless requirements.txt pins that distribution, so this virtualenv's
test tools (pytest pulls in `packaging`, for one) cannot hide a dependency the
image lacks. A module no distribution provides (the standard library, our own
code) passes. Prints "loaded N modules" on success.

    python storeplatform/tests/runtime_imports.py requirements.txt [--without NAME]...
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.metadata
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("storeplatform", "stores", "provisioning")
# Only the dev stack and the tests use these (test_declared_imports.py).
DEV_ONLY_MODULES = {"storeplatform.devservices", "storeplatform.pytest_plugin"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class RuntimeLockGuard(importlib.abc.MetaPathFinder):
    def __init__(self, allowed: set[str]):
        self.allowed = allowed
        self.providers = importlib.metadata.packages_distributions()

    def find_spec(self, fullname, path=None, target=None):
        if "." in fullname:
            return None  # a submodule comes with its top-level package
        dists = self.providers.get(fullname)
        if not dists or any(canonical(d) in self.allowed for d in dists):
            return None
        raise ModuleNotFoundError(
            f"No module named {fullname!r} in the image: it comes from {sorted(dists)}, "
            "which requirements.txt does not install",
            name=fullname,
        )


def locked_names(lock: Path) -> set[str]:
    names = set()
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^]]*\])?==", line)
        if match:
            names.add(canonical(match.group(1)))
    return names


def runtime_modules() -> list[str]:
    modules = ["manage"]
    for package in RUNTIME_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            if "tests" in relative.parts:
                continue
            name = ".".join(relative.parts).removesuffix(".__init__")
            if name not in DEV_ONLY_MODULES:
                modules.append(name)
    return modules


def load_everything() -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core import checks
    from django.core.cache import caches
    from django.db import connections
    from django.db.migrations.loader import MigrationLoader
    from django.template.loader import get_template

    # Our code, the WSGI app with its middleware, every app's migrations.
    for name in runtime_modules():
        importlib.import_module(name)
    from storeplatform.wsgi import application  # noqa: F401

    MigrationLoader(None, ignore_no_migrations=True)
    # URLconf, admin, DRF and drf-spectacular's schema, as `check --deploy` runs them.
    checks.run_checks(include_deployment_checks=True)
    # Every template and the tag libraries it loads.
    for path in (ROOT / "templates").rglob("*.html"):
        get_template(str(path.relative_to(ROOT / "templates")))
    # Database driver and cache client (created, not connected).
    assert connections["default"].Database
    assert caches["default"]._cache.get_client
    # Celery: the broker transport (kombu.transport.redis), result backend,
    # beat's scheduler, and the worker and beat programs; gunicorn's.
    from celery.utils.imports import symbol_by_name

    from storeplatform.celery import app

    app.loader.import_default_modules()
    assert app.connection_for_write().transport
    assert app.backend
    symbol_by_name(settings.CELERY_BEAT_SCHEDULER)
    for program in ("celery.bin.celery", "celery.apps.worker", "celery.apps.beat",
                    "celery.concurrency.prefork", "gunicorn.app.wsgiapp"):
        importlib.import_module(program)
    return len(sys.modules)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path, help="the runtime lock (requirements.txt)")
    parser.add_argument("--without", action="append", default=[], metavar="NAME",
                        help="refuse this locked distribution too (to see the guard work)")
    args = parser.parse_args(argv)
    allowed = locked_names(args.lock) - {canonical(name) for name in args.without}
    sys.meta_path.insert(0, RuntimeLockGuard(allowed))
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storeplatform.settings")
    print(f"loaded {load_everything()} modules")


if __name__ == "__main__":
    main(sys.argv[1:])
