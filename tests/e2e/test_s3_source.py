"""An S3 data source on a real S3 endpoint: moto's S3 server on loopback
stands for S3 (or MinIO), filled with boto3's s3 client. basalt lists and reads
the bucket through object_store: inclusion prefixes, sidecar metadata, a
re-sync that picks up a changed and a deleted object, and a bucket that does
not exist at the endpoint (the job fails with the reason)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

import support
from support import EMBED_MODEL_ID

EMBED_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{EMBED_MODEL_ID}"
ROLE = "arn:aws:iam::000000000000:role/basalt"
REMOTE = "remote-docs"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = support.free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("moto's S3 server did not start", pytrace=False)
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def s3(s3_endpoint):
    client = support.boto_client("s3", s3_endpoint)
    client.create_bucket(Bucket=REMOTE)
    put = lambda key, body: client.put_object(Bucket=REMOTE, Key=key, Body=body.encode())
    put("docs/warranty.txt", "The X200 vacuum cleaner has a warranty of three years from the date of purchase.")
    put("docs/battery.md", "# Battery\n\nThe X200 battery lasts ninety minutes on a full charge.")
    put("docs/battery.md.metadata.json", json.dumps({"metadataAttributes": {"product": "x200", "year": 2024}}))
    put("drafts/secret.txt", "This draft is outside the inclusion prefix and must never be indexed.")
    return client


@pytest.fixture(scope="module")
def srv(start_server, s3_endpoint, s3):
    keys = {"endpoint": s3_endpoint, "region": "us-east-1", "access_key_id": "test", "secret_access_key": "test"}
    server = start_server("s3src", parallel=2, buckets={
        "team-docs": dict(keys, bucket=REMOTE),
        "missing-bucket": dict(keys, bucket="no-such-bucket"),
    })
    yield server
    server.stop()


def _sync(agent, kb_id, ds_id):
    job = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = agent.get_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                      ingestionJobId=job["ingestionJobId"])["ingestionJob"]
        if job["status"] in ("COMPLETE", "FAILED"):
            return job
        time.sleep(0.2)
    raise AssertionError("the ingestion job did not finish")


def _source(agent, bucket: str, name: str | None = None, **s3_config):
    kb_id = agent.create_knowledge_base(name=name or f"kb-{bucket}", roleArn=ROLE, knowledgeBaseConfiguration={
        "type": "VECTOR", "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED_ARN}})["knowledgeBase"]["knowledgeBaseId"]
    ds_id = agent.create_data_source(knowledgeBaseId=kb_id, name="s3", dataSourceConfiguration={
        "type": "S3", "s3Configuration": {"bucketArn": f"arn:aws:s3:::{bucket}", **s3_config}})["dataSource"]["dataSourceId"]
    return kb_id, ds_id


def test_s3_bucket_is_ingested_and_resynced(srv, s3):
    agent = support.boto_client("bedrock-agent", srv.url)
    rt = support.boto_client("bedrock-agent-runtime", srv.url)
    kb_id, ds_id = _source(agent, "team-docs", inclusionPrefixes=["docs/"])
    job = _sync(agent, kb_id, ds_id)
    assert job["status"] == "COMPLETE", job
    stats = job["statistics"]
    assert stats["numberOfDocumentsScanned"] == 2
    assert stats["numberOfMetadataDocumentsScanned"] == 1
    assert stats["numberOfNewDocumentsIndexed"] == 2
    assert stats["numberOfDocumentsFailed"] == 0

    def search(text, **extra):
        return rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": text}, retrievalConfiguration={
            "vectorSearchConfiguration": {"numberOfResults": 5, **extra}})["retrievalResults"]

    hits = search("How long is the warranty?")
    assert hits[0]["location"] == {"type": "S3", "s3Location": {"uri": "s3://team-docs/docs/warranty.txt"}}
    assert "three years" in hits[0]["content"]["text"]
    assert all("draft" not in h["content"]["text"] for h in search("draft outside the prefix"))
    filtered = search("battery", filter={"equals": {"key": "product", "value": "x200"}})
    assert [h["location"]["s3Location"]["uri"] for h in filtered] == ["s3://team-docs/docs/battery.md"]
    assert filtered[0]["metadata"]["year"] == 2024

    # Change one object, delete another, leave the sidecar orphaned.
    s3.put_object(Bucket=REMOTE, Key="docs/warranty.txt", Body=b"The X200 warranty is now five years.")
    s3.delete_object(Bucket=REMOTE, Key="docs/battery.md")
    job = _sync(agent, kb_id, ds_id)
    assert job["status"] == "COMPLETE", job
    stats = job["statistics"]
    assert stats["numberOfModifiedDocumentsIndexed"] == 1
    assert stats["numberOfDocumentsDeleted"] == 1
    assert any("metadata file without a document" in r for r in job.get("failureReasons", []))
    hits = search("warranty")
    assert [h["content"]["text"] for h in hits] == ["The X200 warranty is now five years."]


def test_inclusion_prefixes_are_string_prefixes_at_an_s3_endpoint(srv, s3):
    """basalt asks the endpoint only for the folder a prefix is in; a prefix
    that ends inside a name, has no folder, or has characters object_store
    would percent-encode still selects by string as in Bedrock. (Own folders:
    the test above counts what is under docs/.)"""
    keys = ["pfx/warranty-2023.txt", "pfx/warranty.txt", "pfx/returns.txt", "pfxarchive/old.txt",
            "pfx [old]/warranty.txt", "other/pfx-warranty.txt"]
    for key in keys:
        s3.put_object(Bucket=REMOTE, Key=key, Body=f"The note stored at {key} about the X200.".encode())
    agent = support.boto_client("bedrock-agent", srv.url)
    try:
        for n, (prefix, expected) in enumerate([
            ("pfx/war", ["pfx/warranty-2023.txt", "pfx/warranty.txt"]),
            ("pfxar", ["pfxarchive/old.txt"]),
            ("pfx [old]/", ["pfx [old]/warranty.txt"]),
        ]):
            kb_id, ds_id = _source(agent, "team-docs", name=f"kb-prefix-{n}", inclusionPrefixes=[prefix])
            job = _sync(agent, kb_id, ds_id)
            assert job["status"] == "COMPLETE", job
            assert job["statistics"]["numberOfNewDocumentsIndexed"] == len(expected), (prefix, job)
            listed = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id)["documentDetails"]
            uris = sorted(d["identifier"]["s3"]["uri"] for d in listed)
            assert uris == [f"s3://team-docs/{key}" for key in expected], (prefix, uris)
            assert all(d["status"] == "INDEXED" for d in listed), listed
    finally:
        for key in keys:
            s3.delete_object(Bucket=REMOTE, Key=key)


def test_a_bucket_missing_at_the_endpoint_fails_the_job_with_the_reason(srv):
    agent = support.boto_client("bedrock-agent", srv.url)
    kb_id, ds_id = _source(agent, "missing-bucket")
    job = _sync(agent, kb_id, ds_id)
    assert job["status"] == "FAILED"
    assert any("no-such-bucket" in r for r in job["failureReasons"]), job["failureReasons"]
    support.assert_healthy(support.boto_client("bedrock-runtime", srv.url))
