"""S3-compatible object storage for store backups (issue 12).

Two users, one module:

- the backup and restore Jobs in a store's namespace run it as a command,
  ``python3 -m provisioning.objectstore <command>`` (charts/*/files/backup.sh
  and restore.sh), configured by environment variables;
- the platform imports it to read manifests (``parts.json``), look at objects
  and apply retention, with a ``Config`` built from its settings.

So it imports only the standard library and boto3: no Django, which the Job
container does not configure.

Environment of the command (secrets travel as files, never as values):

    S3_ENDPOINT         URL of the S3 API; "" = AWS
    S3_BUCKET           bucket name
    S3_REGION           region; "" = us-east-1
    S3_ACCESS_KEY_FILE  file holding the access key id
    S3_SECRET_KEY_FILE  file holding the secret access key
    S3_SSE              "" | AES256 | aws:kms: server-side encryption on put

Commands (exit 0 on success; otherwise one line on stderr saying why):

    put KEY                  stdin -> object, streamed in parts of 8 MiB; prints
                             {"key", "size", "sha256"} as one JSON line
    get KEY [--size N --sha256 H]
                             object -> stdout; with the expectations, exits 3
                             after the stream if they do not match
    verify KEY --size N --sha256 H
                             re-reads the object; exits 3 on a mismatch
    head KEY                 prints {"key", "size"}; exits 4 if missing
    put-json KEY             stdin (one JSON document) -> object
    get-json KEY             object -> stdout, as JSON
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

# S3's smallest part is 5 MiB (except the last). 8 MiB parts keep the
# command's memory at a few parts whatever the size of the stream, and allow
# objects up to 78 GiB within S3's 10,000 parts; larger dumps get larger parts
# through OBJECTSTORE_PART_SIZE_MB.
DEFAULT_PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
READ_CHUNK = 1024 * 1024

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_MISMATCH = 3
EXIT_MISSING = 4


class ObjectStoreError(Exception):
    """A failure worth one line to the operator (the Job's termination message)."""

    exit_code = EXIT_ERROR


class MismatchError(ObjectStoreError):
    """The object is not what was written: wrong size or checksum."""

    exit_code = EXIT_MISMATCH


class MissingError(ObjectStoreError):
    exit_code = EXIT_MISSING


@dataclass(frozen=True)
class Config:
    bucket: str
    endpoint: str = ""
    region: str = ""
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    # "" | "AES256" | "aws:kms"
    sse: str = ""

    @classmethod
    def from_files(cls, *, bucket: str, endpoint: str = "", region: str = "",
                   access_key_file: str = "", secret_key_file: str = "",
                   sse: str = "") -> Config:
        """The platform's way: its STORE_BACKUP_S3_* settings name key files."""
        return cls(bucket=bucket, endpoint=endpoint, region=region,
                   access_key=_read_secret(access_key_file, "access key"),
                   secret_key=_read_secret(secret_key_file, "secret key"), sse=sse)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Config:
        """The Job's way: S3_* variables (see the module's docstring)."""
        env = os.environ if environ is None else environ
        bucket = env.get("S3_BUCKET", "")
        if not bucket:
            raise ObjectStoreError("S3_BUCKET is not set: no bucket to back up to")
        sse = env.get("S3_SSE", "")
        if sse not in ("", "AES256", "aws:kms"):
            raise ObjectStoreError(f"S3_SSE must be empty, AES256 or aws:kms, not {sse!r}")
        return cls.from_files(
            bucket=bucket, endpoint=env.get("S3_ENDPOINT", ""), region=env.get("S3_REGION", ""),
            access_key_file=env.get("S3_ACCESS_KEY_FILE", ""),
            secret_key_file=env.get("S3_SECRET_KEY_FILE", ""), sse=sse,
        )


def _read_secret(path: str, what: str) -> str:
    """A key from its file; "" (no file named) lets boto3 find credentials
    its own way (instance roles, IRSA)."""
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise ObjectStoreError(f"cannot read the S3 {what} file {path}: "
                               f"{error.strerror}") from None


def client(config: Config):
    """A boto3 S3 client for ``config`` (path-style addressing off AWS, so
    MinIO, Ceph and moto work without wildcard DNS)."""
    kwargs: dict[str, Any] = {
        "region_name": config.region or "us-east-1",
        "config": BotoConfig(
            s3={"addressing_style": "path" if config.endpoint else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10, read_timeout=60,
            # Checksums of our own (sha256 of the whole object) are verified
            # by re-reading; botocore's default CRC trailers are not
            # understood by every S3-compatible server.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    }
    if config.endpoint:
        kwargs["endpoint_url"] = config.endpoint
    if config.access_key or config.secret_key:
        kwargs["aws_access_key_id"] = config.access_key
        kwargs["aws_secret_access_key"] = config.secret_key
    return boto3.client("s3", **kwargs)


def _describe(error: Exception) -> str:
    """One line for an S3 failure, without request ids or credentials."""
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        code = detail.get("Code", "")
        message = detail.get("Message", "") or str(error)
        return f"{code}: {message}" if code else message
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _put_args(config: Config) -> dict[str, str]:
    return {"ServerSideEncryption": config.sse} if config.sse else {}


def _read_part(stream: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes: a short read from a pipe is not the end."""
    buffer = bytearray()
    while len(buffer) < size:
        chunk = stream.read(min(READ_CHUNK, size - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return bytes(buffer)


def put_stream(config: Config, key: str, stream: IO[bytes],
               part_size: int = DEFAULT_PART_SIZE, s3=None) -> dict[str, Any]:
    """Upload ``stream`` to ``key`` in parts of ``part_size`` bytes, holding
    one part in memory at a time. Returns ``{"key", "size", "sha256"}``.

    The object appears only when the whole stream has been read and every
    part stored (S3 completes a multipart upload atomically); on any error the
    upload is aborted, so a failed put leaves no object and no stored parts.
    """
    s3 = s3 or client(config)
    digest = hashlib.sha256()
    first = _read_part(stream, part_size)
    digest.update(first)
    try:
        if len(first) < part_size:
            # The whole stream fits one part: a plain put.
            s3.put_object(Bucket=config.bucket, Key=key, Body=first, **_put_args(config))
            return {"key": key, "size": len(first), "sha256": digest.hexdigest()}
        upload_id = s3.create_multipart_upload(Bucket=config.bucket, Key=key,
                                               **_put_args(config))["UploadId"]
    except (ClientError, BotoCoreError) as error:
        raise ObjectStoreError(f"cannot write s3://{config.bucket}/{key}: "
                               f"{_describe(error)}") from None
    size = 0
    parts = []
    try:
        chunk = first
        while chunk:
            number = len(parts) + 1
            if number > MAX_PARTS:
                raise ObjectStoreError(
                    f"the stream is larger than {MAX_PARTS} parts of {part_size} bytes: "
                    "raise OBJECTSTORE_PART_SIZE_MB")
            answer = s3.upload_part(Bucket=config.bucket, Key=key, UploadId=upload_id,
                                    PartNumber=number, Body=chunk)
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            size += len(chunk)
            chunk = _read_part(stream, part_size)
            digest.update(chunk)
        s3.complete_multipart_upload(Bucket=config.bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
    except BaseException as error:
        # KeyboardInterrupt and SIGTERM (raised as SystemExit by main) too:
        # never leave stored parts behind to be billed.
        # If even the abort fails, the bucket's lifecycle rule for incomplete
        # multipart uploads is the backstop (chart READMEs).
        with contextlib.suppress(ClientError, BotoCoreError):
            s3.abort_multipart_upload(Bucket=config.bucket, Key=key, UploadId=upload_id)
        if isinstance(error, (ClientError, BotoCoreError)):
            raise ObjectStoreError(f"cannot write s3://{config.bucket}/{key}: "
                                   f"{_describe(error)}") from None
        raise
    return {"key": key, "size": size, "sha256": digest.hexdigest()}


def get_stream(config: Config, key: str, out: IO[bytes] | None = None, s3=None) -> dict[str, Any]:
    """Stream ``key`` into ``out`` (or only read it, if None); returns
    ``{"key", "size", "sha256"}`` of what was read."""
    s3 = s3 or client(config)
    digest = hashlib.sha256()
    size = 0
    try:
        body = s3.get_object(Bucket=config.bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise MissingError(f"s3://{config.bucket}/{key} does not exist") from None
        raise ObjectStoreError(f"cannot read s3://{config.bucket}/{key}: "
                               f"{_describe(error)}") from None
    except BotoCoreError as error:
        raise ObjectStoreError(f"cannot read s3://{config.bucket}/{key}: "
                               f"{_describe(error)}") from None
    return {"key": key, "size": size, "sha256": digest.hexdigest()}


def check(found: dict[str, Any], size: int, sha256: str) -> None:
    """Raise MismatchError unless ``found`` (from get_stream) has this size and sha256."""
    if found["size"] != size:
        raise MismatchError(f"{found['key']} is {found['size']} bytes, expected {size}")
    if found["sha256"] != sha256:
        raise MismatchError(f"{found['key']} has sha256 {found['sha256']}, expected {sha256}")


def verify(config: Config, key: str, size: int, sha256: str, s3=None) -> dict[str, Any]:
    """Re-read ``key`` whole and check its size and sha256."""
    found = get_stream(config, key, None, s3=s3)
    check(found, size, sha256)
    return found


def head(config: Config, key: str, s3=None) -> dict[str, Any] | None:
    """``{"key", "size", "last_modified"}`` of ``key``, or None if it does not exist."""
    s3 = s3 or client(config)
    try:
        answer = s3.head_object(Bucket=config.bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise ObjectStoreError(f"cannot read s3://{config.bucket}/{key}: "
                               f"{_describe(error)}") from None
    except BotoCoreError as error:
        raise ObjectStoreError(f"cannot read s3://{config.bucket}/{key}: "
                               f"{_describe(error)}") from None
    return {"key": key, "size": answer["ContentLength"],
            "last_modified": answer["LastModified"].isoformat()}


def write_json(config: Config, key: str, document: Any, s3=None) -> None:
    s3 = s3 or client(config)
    body = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
    try:
        s3.put_object(Bucket=config.bucket, Key=key, Body=body,
                      ContentType="application/json", **_put_args(config))
    except (ClientError, BotoCoreError) as error:
        raise ObjectStoreError(f"cannot write s3://{config.bucket}/{key}: "
                               f"{_describe(error)}") from None


def read_json(config: Config, key: str, s3=None) -> Any:
    """The JSON document at ``key``; MissingError if there is none."""
    import io

    buffer = io.BytesIO()
    get_stream(config, key, buffer, s3=s3)
    try:
        return json.loads(buffer.getvalue())
    except ValueError as error:
        raise ObjectStoreError(f"s3://{config.bucket}/{key} is not JSON: {error}") from None


def list_keys(config: Config, prefix: str, s3=None) -> list[str]:
    s3 = s3 or client(config)
    keys = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config.bucket,
                                                                 Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
    except (ClientError, BotoCoreError) as error:
        raise ObjectStoreError(f"cannot list s3://{config.bucket}/{prefix}: "
                               f"{_describe(error)}") from None
    return keys


def delete_prefix(config: Config, prefix: str, s3=None) -> int:
    """Delete every object under ``prefix`` (retention); returns how many.
    Refuses an empty prefix or one not ending in "/", which could reach
    other backups."""
    if not prefix or not prefix.endswith("/"):
        raise ObjectStoreError(f"refusing to delete under {prefix!r}: a backup prefix "
                               "ends with '/'")
    s3 = s3 or client(config)
    keys = list_keys(config, prefix, s3=s3)
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start:start + 1000]]
        try:
            answer = s3.delete_objects(Bucket=config.bucket,
                                       Delete={"Objects": batch, "Quiet": True})
        except (ClientError, BotoCoreError) as error:
            raise ObjectStoreError(f"cannot delete under s3://{config.bucket}/{prefix}: "
                                   f"{_describe(error)}") from None
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise ObjectStoreError(f"cannot delete s3://{config.bucket}/{first['Key']}: "
                                   f"{first.get('Code')}: {first.get('Message')}")
    return len(keys)


# --- the command ---------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m provisioning.objectstore",
                                     description="Store backups' object storage (S3_* env).")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("put", help="stdin -> KEY (multipart)").add_argument("key")
    get = commands.add_parser("get", help="KEY -> stdout")
    get.add_argument("key")
    get.add_argument("--size", type=int)
    get.add_argument("--sha256")
    verify_cmd = commands.add_parser("verify", help="re-read KEY, check size and sha256")
    verify_cmd.add_argument("key")
    verify_cmd.add_argument("--size", type=int, required=True)
    verify_cmd.add_argument("--sha256", required=True)
    commands.add_parser("head", help="size of KEY").add_argument("key")
    commands.add_parser("put-json", help="stdin (JSON) -> KEY").add_argument("key")
    commands.add_parser("get-json", help="KEY (JSON) -> stdout").add_argument("key")
    return parser


def _part_size() -> int:
    given = os.environ.get("OBJECTSTORE_PART_SIZE_MB", "")
    if not given:
        return DEFAULT_PART_SIZE
    if not given.isdigit() or not 5 <= int(given) <= 5120:
        raise ObjectStoreError("OBJECTSTORE_PART_SIZE_MB must be a whole number from 5 to 5120")
    return int(given) * 1024 * 1024


def _run(args: argparse.Namespace) -> None:
    config = Config.from_env()
    out = sys.stdout.buffer
    if args.command == "put":
        result = put_stream(config, args.key, sys.stdin.buffer, part_size=_part_size())
        print(json.dumps(result), flush=True)
    elif args.command == "get":
        if (args.size is None) != (args.sha256 is None):
            raise ObjectStoreError("get: give both --size and --sha256, or neither")
        found = get_stream(config, args.key, out)
        out.flush()
        if args.size is not None:
            check(found, args.size, args.sha256)
    elif args.command == "verify":
        print(json.dumps(verify(config, args.key, args.size, args.sha256)), flush=True)
    elif args.command == "head":
        found = head(config, args.key)
        if found is None:
            raise MissingError(f"s3://{config.bucket}/{args.key} does not exist")
        print(json.dumps(found), flush=True)
    elif args.command == "put-json":
        try:
            document = json.load(sys.stdin)
        except ValueError as error:
            raise ObjectStoreError(f"put-json: stdin is not JSON: {error}") from None
        write_json(config, args.key, document)
    elif args.command == "get-json":
        print(json.dumps(read_json(config, args.key), indent=2, sort_keys=True), flush=True)


def main(argv: list[str] | None = None) -> int:
    import signal

    # SIGTERM (the Job's deadline, a deleted pod) unwinds like Ctrl-C, so a
    # multipart upload in flight is aborted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except ObjectStoreError as error:
        print(f"objectstore: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # The reader went away (e.g. a failed pg_restore): its error is the one to report.
        print(f"objectstore: {args.command}: the reading side closed the pipe", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
