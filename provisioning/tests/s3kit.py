"""A real S3-compatible server on loopback for the backup tests: moto's server
mode (``moto_server``, from requirements-dev), one per test session, a fresh
bucket per test. The ``object_storage`` fixture (root conftest.py) yields an
``ObjectStorage``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from provisioning import objectstore
from storeplatform.devservices import free_port, wait_for_port

REGION = "eu-west-1"


class MotoServer:
    """``moto_server`` on 127.0.0.1, in its own session, logging to a file."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or \
            shutil.which("moto_server")
        if not binary:
            raise RuntimeError("moto_server is missing: pip install -r requirements-dev.txt")
        log = open(self.workdir / "moto.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for_port(self.port, timeout=60, process=self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class ObjectStorage:
    """One test's bucket on the moto server, and what a Job or the platform
    needs to reach it."""

    endpoint: str
    bucket: str
    region: str
    access_key_file: Path
    secret_key_file: Path

    @property
    def config(self) -> objectstore.Config:
        return objectstore.Config.from_files(
            bucket=self.bucket, endpoint=self.endpoint, region=self.region,
            access_key_file=str(self.access_key_file),
            secret_key_file=str(self.secret_key_file))

    @property
    def env(self) -> dict[str, str]:
        """The S3_* environment of the backup scripts and the objectstore command."""
        return {
            "S3_ENDPOINT": self.endpoint,
            "S3_BUCKET": self.bucket,
            "S3_REGION": self.region,
            "S3_ACCESS_KEY_FILE": str(self.access_key_file),
            "S3_SECRET_KEY_FILE": str(self.secret_key_file),
            "S3_SSE": "",
        }

    def client(self):
        return objectstore.client(self.config)

    def object_keys(self, prefix: str = "") -> list[str]:
        return sorted(objectstore.list_keys(self.config, prefix))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def write(self, key: str, body: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=body)

    def incomplete_uploads(self) -> list[str]:
        answer = self.client().list_multipart_uploads(Bucket=self.bucket)
        return [upload["Key"] for upload in answer.get("Uploads", [])]


def new_bucket(server: MotoServer, workdir: Path) -> ObjectStorage:
    workdir.mkdir(parents=True, exist_ok=True)
    access, secret = workdir / "access-key", workdir / "secret-key"
    # moto accepts any keys; they still travel as files, as in the Job.
    access.write_text("AKIATESTBACKUPS0001\n")
    secret.write_text(f"test-secret-{uuid.uuid4().hex}\n")
    os.chmod(secret, 0o600)
    storage = ObjectStorage(server.endpoint, f"backups-{uuid.uuid4().hex[:12]}", REGION,
                            access, secret)
    storage.client().create_bucket(
        Bucket=storage.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return storage
