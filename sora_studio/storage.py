"""Where media lives: local disk by default, an S3-compatible bucket when AWS_STORAGE_BUCKET_NAME is set.

Read by settings.py from the environment (and by the tests with a local S3 server's address), so it
imports nothing of Django's apps. Credentials are not read here: boto3 finds them itself
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or the machine's role) and they never reach
the settings module.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

S3_BACKEND = "storages.backends.s3.S3Storage"
FILESYSTEM_BACKEND = "django.core.files.storage.FileSystemStorage"
# A file read from the bucket (an export copying videos, ffmpeg taking a still) is buffered in memory
# up to this size, then on disk, instead of all in memory (django-storages' default).
READ_BUFFER_BYTES = 8 * 1024 * 1024


def media_url_seconds(environ: Mapping[str, str]) -> int:
    """How long a signed link to a stored file is valid: long enough to watch a video, short enough that
    a copied link soon stops working."""
    return int(environ.get("MEDIA_URL_SECONDS", "600"))


def default_storage(environ: Mapping[str, str]) -> dict:
    """The STORAGES["default"] entry for this environment."""
    bucket = environ.get("AWS_STORAGE_BUCKET_NAME", "").strip()
    if not bucket:
        return {"BACKEND": FILESYSTEM_BACKEND}
    options = {
        "bucket_name": bucket,
        "location": environ.get("AWS_LOCATION", "").strip("/"),
        "region_name": environ.get("AWS_S3_REGION_NAME") or None,
        "endpoint_url": environ.get("AWS_S3_ENDPOINT_URL") or None,
        "addressing_style": environ.get("AWS_S3_ADDRESSING_STYLE") or None,
        "signature_version": "s3v4",
        # Private objects, read through signed links that expire.
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": media_url_seconds(environ),
        # Two writers of one name get two objects, as on disk: an avatar made twice at once must not
        # overwrite the copy the other request keeps (django-storages overwrites by default).
        "file_overwrite": False,
        "max_memory_size": READ_BUFFER_BYTES,
    }
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}


def media_origins(environ: Mapping[str, str]) -> list[str]:
    """The origins signed links point at, which the Content-Security-Policy must allow for <video> and
    <img> (a redirect to another origin is checked against the policy too). MEDIA_ORIGIN (comma-separated)
    overrides them; none when media is served from this site."""
    if explicit := environ.get("MEDIA_ORIGIN", "").strip():
        return [origin.strip().rstrip("/") for origin in explicit.split(",") if origin.strip()]
    bucket = environ.get("AWS_STORAGE_BUCKET_NAME", "").strip()
    if not bucket:
        return []
    if endpoint := environ.get("AWS_S3_ENDPOINT_URL", ""):
        # boto3 signs path-style links (endpoint/bucket/key) for a custom endpoint unless told "virtual".
        parts = urlsplit(endpoint)
        virtual = environ.get("AWS_S3_ADDRESSING_STYLE", "") == "virtual"
        return [f"{parts.scheme}://{bucket}.{parts.netloc}" if virtual else f"{parts.scheme}://{parts.netloc}"]
    # Amazon S3 itself: boto3 names the bucket's regional host, or the global one for us-east-1.
    origins = [f"https://{bucket}.s3.amazonaws.com"]
    if region := environ.get("AWS_S3_REGION_NAME") or environ.get("AWS_DEFAULT_REGION"):
        origins.append(f"https://{bucket}.s3.{region}.amazonaws.com")
    return origins
