"""A local S3 server (moto's, on a free loopback port) for tests of media kept in a bucket."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import requests

from sora_studio import storage

BUCKET = "studio-media"
REGION = "us-east-1"


@dataclass
class Bucket:
    client: Any  # boto3's S3 client, straight to the server
    name: str
    endpoint: str
    environment: dict

    def keys(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return {entry["Key"] for page in pages for entry in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


def start(settings, monkeypatch):
    """Start the server, make the bucket, and configure the studio as settings.py does for an environment
    with AWS_STORAGE_BUCKET_NAME: STORAGES["default"] and the policy's img-src / media-src. Yields the bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # Credentials reach boto3 from the environment, never from settings.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "studio-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "studio-test-secret")
    environment = {"AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_ENDPOINT_URL": endpoint, "AWS_S3_REGION_NAME": REGION}
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {**settings.STORAGES, "default": storage.default_storage(environment)}
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    for directive in ("img-src", "media-src"):
        policy["DIRECTIVES"][directive] += storage.media_origins(environment)
    settings.CONTENT_SECURITY_POLICY = policy
    try:
        yield Bucket(client, BUCKET, endpoint, environment)
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=5)  # moto keeps buckets per process, not per server
        server.stop()
