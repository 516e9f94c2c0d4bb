"""A real S3 API on 127.0.0.1: moto's server mode, one per test session.

``s3_server`` starts ``ThreadedMotoServer`` on a free port. ``s3_bucket``
gives each test its own empty bucket and, for that test only, fake AWS
credentials and region in the environment (with the user's AWS config files
hidden), so code that builds its own boto3 client finds them as it would in
production.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        """A boto3 S3 client with explicit fake credentials; the caller closes it."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@dataclass(frozen=True)
class S3Bucket:
    endpoint_url: str
    name: str
    client: Any

    def objects(self) -> dict[str, dict[str, Any]]:
        """Key → the ``get_object`` reply (body read into ``"Data"``) of every object."""
        found: dict[str, dict[str, Any]] = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        for page in pages:
            for entry in page.get("Contents", []):
                reply = self.client.get_object(Bucket=self.name, Key=entry["Key"])
                with reply["Body"] as body:
                    reply["Data"] = body.read()
                found[entry["Key"]] = reply
        return found


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield S3Server(f"http://{host}:{port}")
    server.stop()


@pytest.fixture
def s3_bucket(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[S3Bucket]:
    missing = str(tmp_path / "no-aws-config")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", missing)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    client = s3_server.client()
    name = f"test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    yield S3Bucket(s3_server.endpoint_url, name, client)
    client.close()
