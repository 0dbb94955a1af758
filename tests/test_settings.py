"""Settings come from the environment: production refuses the development secret; PostgreSQL keeps its
connections; a bucket name moves media to S3; DEBUG off serves static files with whitenoise."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check(**env):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_debug_off_without_a_secret_key_refuses_to_start():
    result = check(DEBUG="false", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0 and "Set SECRET_KEY" in result.stderr


def test_debug_off_with_a_secret_key_starts():
    result = check(DEBUG="false", ALLOWED_HOSTS="example.com", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr


def settings_in(**env) -> dict:
    """The settings a process started with `env` ends up with (the database and media parts)."""
    code = (
        "import json; from django.conf import settings as s; db = s.DATABASES['default'];"
        "print(json.dumps({'engine': db['ENGINE'], 'max_age': db['CONN_MAX_AGE'],"
        " 'health': db.get('CONN_HEALTH_CHECKS', False), 'save_limit': s.Q_CLUSTER['save_limit'],"
        " 'options': {k: v for k, v in db.get('OPTIONS', {}).items()"
        " if k in ('server_side_binding', 'prepare_threshold')},"
        " 'storage': s.STORAGES['default'], 'static': s.STORAGES['staticfiles']['BACKEND'],"
        " 'media_src': s.CONTENT_SECURITY_POLICY['DIRECTIVES']['media-src'],"
        " 'img_src': s.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src'],"
        " 'whitenoise': any('whitenoise' in m for m in s.MIDDLEWARE)}))"
    )
    names = (
        "DATABASE_URL",
        "DB_CONN_MAX_AGE",
        "DB_PREPARED_STATEMENTS",
        "AWS_STORAGE_BUCKET_NAME",
        "AWS_S3_ENDPOINT_URL",
        "MEDIA_ORIGIN",
    )
    environment = {k: v for k, v in os.environ.items() if k not in names and not k.startswith("AWS_S3_")}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_defaults_are_sqlite_and_local_disk():
    found = settings_in()
    assert (found["engine"], found["max_age"], found["health"]) == ("django.db.backends.sqlite3", 60, False)
    assert found["storage"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert found["media_src"] == ["'self'"] and not found["whitenoise"]
    assert found["save_limit"] == -1  # successful task results are not kept: our tables hold the history


def test_postgresql_keeps_its_connections_and_checks_them_before_use():
    found = settings_in(DATABASE_URL="postgres://studio@db.internal:5432/studio")
    assert (found["engine"], found["max_age"], found["health"]) == ("django.db.backends.postgresql", 60, True)
    assert settings_in(DATABASE_URL="postgres://studio@db.internal/studio", DB_CONN_MAX_AGE="0")["max_age"] == 0


def test_postgresql_prepares_the_statements_it_runs_again_and_again_unless_told_not_to():
    """A pooler in transaction mode that does not track prepared statements needs them off."""
    on = settings_in(DATABASE_URL="postgres://studio@db.internal:5432/studio")
    assert on["options"] == {"server_side_binding": True, "prepare_threshold": 5}
    off = settings_in(DATABASE_URL="postgres://studio@db.internal:6432/studio", DB_PREPARED_STATEMENTS="false")
    assert off["options"] == {}
    assert settings_in()["options"] == {}, "SQLite has none to prepare"


def test_naming_a_bucket_puts_media_there_behind_signed_links_the_policy_allows():
    found = settings_in(AWS_STORAGE_BUCKET_NAME="studio-media", AWS_S3_REGION_NAME="eu-west-1")
    assert found["storage"]["BACKEND"] == "storages.backends.s3.S3Storage"
    options = found["storage"]["OPTIONS"]
    assert options["bucket_name"] == "studio-media" and options["region_name"] == "eu-west-1"
    assert options["querystring_auth"] and options["querystring_expire"] == 600 and not options["file_overwrite"]
    assert "access_key" not in options and "secret_key" not in options  # boto3 reads credentials itself
    origins = ["https://studio-media.s3.amazonaws.com", "https://studio-media.s3.eu-west-1.amazonaws.com"]
    assert found["media_src"] == ["'self'", *origins] and found["img_src"] == ["'self'", "data:", *origins]
    minio = settings_in(AWS_STORAGE_BUCKET_NAME="media", AWS_S3_ENDPOINT_URL="https://minio.internal:9000")
    assert minio["storage"]["OPTIONS"]["endpoint_url"] == "https://minio.internal:9000"
    assert minio["media_src"] == ["'self'", "https://minio.internal:9000"]


def test_production_serves_static_files_with_whitenoise():
    found = settings_in(DEBUG="false", SECRET_KEY="x" * 50, ALLOWED_HOSTS="example.com")
    assert found["whitenoise"] and found["static"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
