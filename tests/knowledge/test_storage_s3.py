"""Uploads on S3 (django-storages) against a moto server on loopback: upload, ingest, delete."""

from __future__ import annotations

import boto3
import pytest
from moto.server import ThreadedMotoServer

from knowledge import ingest
from knowledge.models import Chunk, Document
from tests.conftest import wait_for
from tests.knowledge.conftest import docx_bytes

BUCKET = "agentos-test-uploads"


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, settings, monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": moto_endpoint, "region_name": "us-east-1"},
        },
    }
    yield client
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for item in objects:
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_upload_ingest_and_delete_on_s3(kb, alice, s3, media, celery_worker):
    data = docx_bytes([(1, "Warranty"), (0, "Two years on every device.")])

    document = ingest.document_add_file(kb=kb, by=alice, filename="warranty.docx", data=data)

    assert _keys(s3) == [document.file.name]
    assert s3.get_object(Bucket=BUCKET, Key=document.file.name)["Body"].read() == data
    assert not media.exists()  # nothing went to the local folder
    wait_for(lambda: Document.objects.get(pk=document.pk).status == Document.Status.READY, timeout=20)
    assert document.chunks.get().metadata["heading_path"] == ["Warranty"]

    ingest.document_delete(document=document)

    assert _keys(s3) == []
    assert not Document.objects.exists() and not Chunk.objects.exists()


def test_same_file_name_in_two_knowledge_bases_never_overwrites(kb, make_kb, alice, s3, transactional_db):
    first = ingest.document_add_file(kb=kb, by=alice, filename="notes.txt", data=b"first")
    second = ingest.document_add_file(
        kb=make_kb(name="Other"), by=alice, filename="notes.txt", data=b"second"
    )

    assert first.file.name != second.file.name
    assert sorted(_keys(s3)) == sorted([first.file.name, second.file.name])
    ingest.document_delete(document=first)
    assert _keys(s3) == [second.file.name]
