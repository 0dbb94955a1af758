"""Exports as a creator gets them: ask on a page, watch the worker build it, download the zip."""

import io
import zipfile

from django.test import TestCase
from django.urls import reverse

from generations.storyboards.models import Export


def request_export(client, url: str) -> Export:
    """Press an export button (a POST); the build task runs inline (the sync queue) once the request commits."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 302, response
    return Export.objects.get(pk=int(response.url.rstrip("/").rsplit("/", 1)[-1]))


def download(client, export: Export):
    return client.get(reverse("export_download", args=[export.pk]))


def open_zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def export_zip(client, url: str) -> zipfile.ZipFile:
    """The zip an export button ends in, after its page said it was ready."""
    export = request_export(client, url)
    status = client.get(reverse("export_detail", args=[export.pk]), headers={"HX-Request": "true"})
    assert status.status_code == 286 and "Ready." in status.text, status.text
    return open_zip(download(client, export))
