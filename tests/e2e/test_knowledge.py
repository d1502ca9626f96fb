"""Knowledge bases end to end with boto3 (bedrock-agent, bedrock-agent-runtime):
CRUD, S3 data sources backed by a directory (every parser, sidecar metadata,
re-ingest with a changed and a deleted file, a link out of the root, a
malformed PDF), CUSTOM data sources with every chunking strategy and every
filter operator, pagination, RetrieveAndGenerate with citations and sessions,
and an ingestion job that survives a crash."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import botocore.exceptions
import pytest

import support
from support import EMBED_MODEL_ID, MODEL_ID

EMBED_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{EMBED_MODEL_ID}"
ROLE = "arn:aws:iam::000000000000:role/basalt"
BUCKET = "kb-docs"


def _pdf(text: str) -> bytes:
    """A minimal valid one-page PDF showing `text` (xref offsets computed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


DOCS = {
    "docs/volcano.txt": "Krakatoa is a volcano in Indonesia. Its eruption in 1883 was one of the deadliest in history, and the explosion was heard thousands of kilometres away.",
    "docs/tea.md": "# Brewing tea\n\nGreen tea should be brewed with water at about 80 degrees Celsius for two minutes. Black tea takes boiling water and four minutes.",
    "docs/bikes.html": "<html><head><title>Bicycles</title><style>p{color:red}</style></head><body><p>A bicycle chain needs oil every few hundred kilometres &amp; a clean drivetrain lasts longer.</p><script>alert(1)</script></body></html>",
    "docs/planets.csv": "planet,moons\nMars,2\nJupiter,95\n",
    "docs/company.json": json.dumps({"company": {"name": "Acme Rockets", "founded": 1999, "products": ["rocket skates", "anvils"]}}),
}


@pytest.fixture(scope="module")
def bucket_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bucket")
    for key, text in DOCS.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(text)
    (root / "docs/volcano.txt.metadata.json").write_text(
        json.dumps({"metadataAttributes": {"topic": "geology", "year": 1883}})
    )
    (root / "docs/lighthouse.pdf").write_bytes(_pdf("The lighthouse keeper lit the lamp at dusk every evening."))
    (root / "docs/broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n%%EOF")
    (root / "docs/photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    secret = root.parent / "secret.txt"
    secret.write_text("TOP SECRET launch codes")
    os.symlink(secret, root / "docs/escape.txt")
    (root / "elsewhere").mkdir()
    (root / "elsewhere/ignored.txt").write_text("Outside the inclusion prefix.")
    return root


@pytest.fixture(scope="module")
def kb_server(start_server, bucket_dir):
    srv = start_server("kb", buckets={BUCKET: str(bucket_dir)}, parallel=2)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def agent(kb_server):
    return support.boto_client("bedrock-agent", kb_server.url)


@pytest.fixture(scope="module")
def rt(kb_server):
    return support.boto_client("bedrock-agent-runtime", kb_server.url)


def _kb_config(model: str = EMBED_ARN) -> dict:
    return {"type": "VECTOR", "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": model}}


def _create_kb(agent, name: str) -> str:
    kb = agent.create_knowledge_base(name=name, roleArn=ROLE, knowledgeBaseConfiguration=_kb_config())
    return kb["knowledgeBase"]["knowledgeBaseId"]


def _wait_job(agent, kb_id: str, ds_id: str, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = agent.get_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id, ingestionJobId=job_id)["ingestionJob"]
        if job["status"] in ("COMPLETE", "FAILED", "STOPPED"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"ingestion job {job_id} did not finish in {timeout}s")


def _sync(agent, kb_id: str, ds_id: str) -> dict:
    job = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]
    assert job["status"] in ("STARTING", "IN_PROGRESS")
    return _wait_job(agent, kb_id, ds_id, job["ingestionJobId"])


def _client_error(call, code: str) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    assert e.value.response["Error"]["Code"] == code, e.value.response
    return e.value.response["Error"]["Message"]


def _texts(resp) -> list[str]:
    return [r["content"]["text"] for r in resp["retrievalResults"]]


# ---------------------------------------------------------------- control plane


def test_knowledge_base_crud_and_validation(agent):
    kb = agent.create_knowledge_base(
        name="crud-kb", description="first", roleArn=ROLE, knowledgeBaseConfiguration=_kb_config(),
        storageConfiguration={"type": "OPENSEARCH_SERVERLESS", "opensearchServerlessConfiguration": {
            "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/x", "vectorIndexName": "i",
            "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"}}},
    )["knowledgeBase"]
    kb_id = kb["knowledgeBaseId"]
    assert len(kb_id) == 10 and kb["status"] == "ACTIVE"
    assert kb["knowledgeBaseArn"].endswith(f":knowledge-base/{kb_id}")
    got = agent.get_knowledge_base(knowledgeBaseId=kb_id)["knowledgeBase"]
    assert got["name"] == "crud-kb" and got["description"] == "first"
    assert got["knowledgeBaseConfiguration"] == _kb_config()
    assert got["storageConfiguration"]["type"] == "OPENSEARCH_SERVERLESS"
    assert kb_id in [s["knowledgeBaseId"] for s in agent.list_knowledge_bases()["knowledgeBaseSummaries"]]
    updated = agent.update_knowledge_base(knowledgeBaseId=kb_id, name="crud-kb-2", description="second",
                                          roleArn=ROLE, knowledgeBaseConfiguration=_kb_config())["knowledgeBase"]
    assert updated["name"] == "crud-kb-2" and updated["description"] == "second"
    _client_error(lambda: agent.create_knowledge_base(name="crud-kb-2", roleArn=ROLE,
                  knowledgeBaseConfiguration=_kb_config()), "ConflictException")
    _client_error(lambda: agent.create_knowledge_base(name="bad-model", roleArn=ROLE,
                  knowledgeBaseConfiguration=_kb_config(support.MODEL_ARN)), "ValidationException")
    _client_error(lambda: agent.create_knowledge_base(name="no-such", roleArn=ROLE,
                  knowledgeBaseConfiguration=_kb_config("amazon.titan-embed-text-v2:0")), "ValidationException")
    _client_error(lambda: agent.create_knowledge_base(name="bad name!", roleArn=ROLE,
                  knowledgeBaseConfiguration=_kb_config()), "ValidationException")
    before = len(agent.list_knowledge_bases()["knowledgeBaseSummaries"])
    deleted = agent.delete_knowledge_base(knowledgeBaseId=kb_id)
    assert deleted["status"] == "DELETING"
    _client_error(lambda: agent.get_knowledge_base(knowledgeBaseId=kb_id), "ResourceNotFoundException")
    assert len(agent.list_knowledge_bases()["knowledgeBaseSummaries"]) == before - 1


def test_client_tokens_make_retried_creates_idempotent(agent, filter_kb):
    config = _kb_config()
    kb = agent.create_knowledge_base(name="idem", roleArn=ROLE, knowledgeBaseConfiguration=config,
                                     clientToken="tok-kb-0000000000000000000000000001")["knowledgeBase"]
    again = agent.create_knowledge_base(name="idem", roleArn=ROLE, knowledgeBaseConfiguration=config,
                                        clientToken="tok-kb-0000000000000000000000000001")["knowledgeBase"]
    assert again["knowledgeBaseId"] == kb["knowledgeBaseId"]
    assert [k["name"] for k in agent.list_knowledge_bases()["knowledgeBaseSummaries"]].count("idem") == 1
    _client_error(lambda: agent.create_knowledge_base(name="idem-2", roleArn=ROLE, knowledgeBaseConfiguration=config,
                                                      clientToken="tok-kb-0000000000000000000000000001"), "ConflictException")
    # Without a token of its own, boto3 sends a fresh one per call: two creates.
    ds = [agent.create_data_source(knowledgeBaseId=kb["knowledgeBaseId"], name=f"src{i}",
                                   dataSourceConfiguration={"type": "CUSTOM"})["dataSource"]["dataSourceId"]
          for i in range(2)]
    assert ds[0] != ds[1]
    kb_id, ds_id = filter_kb
    job = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id, clientToken="tok-job-000000000000000000000000001")
    job_again = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id, clientToken="tok-job-000000000000000000000000001")
    assert job_again["ingestionJob"]["ingestionJobId"] == job["ingestionJob"]["ingestionJobId"]
    _wait_job(agent, kb_id, ds_id, job["ingestionJob"]["ingestionJobId"])


def test_list_pagination(agent):
    ids = [_create_kb(agent, f"page-kb-{i}") for i in range(3)]
    seen = []
    for page in agent.get_paginator("list_knowledge_bases").paginate(PaginationConfig={"PageSize": 2}):
        assert len(page["knowledgeBaseSummaries"]) <= 2
        seen += [s["knowledgeBaseId"] for s in page["knowledgeBaseSummaries"]]
    assert set(ids) <= set(seen)
    for kb_id in ids:
        agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_data_source_validation(agent):
    kb_id = _create_kb(agent, "ds-validation")
    s3 = {"type": "S3", "s3Configuration": {"bucketArn": f"arn:aws:s3:::{BUCKET}"}}
    _client_error(lambda: agent.create_data_source(knowledgeBaseId=kb_id, name="x", dataSourceConfiguration={
        "type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::unknown-bucket"}}), "ValidationException")
    _client_error(lambda: agent.create_data_source(knowledgeBaseId=kb_id, name="x", dataSourceConfiguration={
        "type": "S3", "s3Configuration": {"bucketArn": f"arn:aws:s3:::{BUCKET}", "inclusionPrefixes": ["../"]}}),
        "ValidationException")
    _client_error(lambda: agent.create_data_source(knowledgeBaseId=kb_id, name="x", dataSourceConfiguration=s3,
        vectorIngestionConfiguration={"chunkingConfiguration": {"chunkingStrategy": "SEMANTIC",
            "semanticChunkingConfiguration": {"maxTokens": 100, "bufferSize": 3, "breakpointPercentileThreshold": 95}}}),
        "ValidationException")
    # Chunks must fit the embedding model (context_window 256: 254 tokens of text).
    for chunking in ({"chunkingStrategy": "FIXED_SIZE", "fixedSizeChunkingConfiguration": {"maxTokens": 300, "overlapPercentage": 20}},
                     {"chunkingStrategy": "HIERARCHICAL", "hierarchicalChunkingConfiguration": {
                         "levelConfigurations": [{"maxTokens": 1500}, {"maxTokens": 300}], "overlapTokens": 60}}):
        message = _client_error(lambda: agent.create_data_source(knowledgeBaseId=kb_id, name="x", dataSourceConfiguration=s3,
                                vectorIngestionConfiguration={"chunkingConfiguration": chunking}), "ValidationException")
        assert "254" in message, message
    _client_error(lambda: agent.create_data_source(knowledgeBaseId="NOSUCHKB00", name="x",
                  dataSourceConfiguration=s3), "ResourceNotFoundException")
    assert agent.list_data_sources(knowledgeBaseId=kb_id)["dataSourceSummaries"] == []
    ds = agent.create_data_source(knowledgeBaseId=kb_id, name="ok", dataSourceConfiguration=s3)["dataSource"]
    assert ds["status"] == "AVAILABLE" and ds["dataDeletionPolicy"] == "DELETE"
    _client_error(lambda: agent.create_data_source(knowledgeBaseId=kb_id, name="ok", dataSourceConfiguration=s3),
                  "ConflictException")
    upd = agent.update_data_source(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"], name="ok",
                                   description="renamed", dataSourceConfiguration=s3)["dataSource"]
    assert upd["description"] == "renamed"
    got = agent.get_data_source(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"])["dataSource"]
    assert got["dataSourceConfiguration"] == s3
    agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"])
    _client_error(lambda: agent.get_data_source(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"]),
                  "ResourceNotFoundException")
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


# ---------------------------------------------------------------- S3 ingestion


@pytest.fixture(scope="module")
def s3_kb(agent, bucket_dir):
    kb_id = _create_kb(agent, "s3-kb")
    ds = agent.create_data_source(
        knowledgeBaseId=kb_id, name="bucket",
        dataSourceConfiguration={"type": "S3", "s3Configuration": {
            "bucketArn": f"arn:aws:s3:::{BUCKET}", "inclusionPrefixes": ["docs/"]}},
    )["dataSource"]
    job = _sync(agent, kb_id, ds["dataSourceId"])
    return kb_id, ds["dataSourceId"], job


def test_directory_ingest_parses_every_format_and_reports_failures(s3_kb):
    _, _, job = s3_kb
    stats = job["statistics"]
    assert job["status"] == "COMPLETE", job
    # 5 text formats + 2 PDFs + 1 PNG; the link out of the root is refused.
    assert stats["numberOfDocumentsScanned"] == 8
    assert stats["numberOfMetadataDocumentsScanned"] == 1
    assert stats["numberOfNewDocumentsIndexed"] == 6
    assert stats["numberOfDocumentsSkipped"] == 1
    assert stats["numberOfDocumentsFailed"] == 2
    reasons = "\n".join(job["failureReasons"])
    assert "broken.pdf" in reasons and "escape.txt" in reasons and "photo.png" in reasons


def test_retrieve_finds_each_format(rt, s3_kb):
    kb_id = s3_kb[0]
    cases = {
        "When did Krakatoa erupt?": "Krakatoa",
        "How hot should the water be for green tea?": "80 degrees",
        "How often should I oil my bicycle chain?": "bicycle chain",
        "How many moons does Jupiter have?": "Jupiter; moons: 95",
        "Which company sells rocket skates?": "Acme Rockets",
        "Who lit the lamp in the lighthouse?": "lighthouse keeper",
    }
    for query, expected in cases.items():
        for search in ("SEMANTIC", "HYBRID"):
            resp = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": query},
                               retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 2, "overrideSearchType": search}})
            assert expected in resp["retrievalResults"][0]["content"]["text"], (search, query, _texts(resp))
    resp = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "volcano"})
    top = resp["retrievalResults"][0]
    assert top["location"]["s3Location"]["uri"] == f"s3://{BUCKET}/docs/volcano.txt"
    assert top["metadata"]["topic"] == "geology" and top["metadata"]["year"] == 1883
    assert 0 < top["score"] <= 1
    everything = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "launch codes secret"},
                             retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 100}})
    assert not any("SECRET" in t or "Outside the inclusion" in t for t in _texts(everything))
    assert "this is not really" not in " ".join(_texts(everything))


def test_s3_documents_are_listed_and_got_by_their_s3_uri(agent, s3_kb):
    kb_id, ds_id, _ = s3_kb
    listed = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id)["documentDetails"]
    uris = {d["identifier"]["s3"]["uri"]: d["status"] for d in listed}
    assert uris[f"s3://{BUCKET}/docs/volcano.txt"] == "INDEXED"
    assert uris[f"s3://{BUCKET}/docs/broken.pdf"] == "FAILED"
    assert all(d["identifier"]["dataSourceType"] == "S3" for d in listed)
    ident = {"dataSourceType": "S3", "s3": {"uri": f"s3://{BUCKET}/docs/tea.md"}}
    got = agent.get_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                             documentIdentifiers=[ident])["documentDetails"]
    assert got[0]["identifier"] == ident and got[0]["status"] == "INDEXED"
    for bad in ({"dataSourceType": "S3", "s3": {"uri": "s3://another-bucket/docs/tea.md"}},
                {"dataSourceType": "CUSTOM", "custom": {"id": "docs/tea.md"}}):
        _client_error(lambda: agent.get_knowledge_base_documents(
            knowledgeBaseId=kb_id, dataSourceId=ds_id, documentIdentifiers=[bad]), "ValidationException")


def test_retrieve_filter_on_sidecar_metadata_and_bad_requests(rt, s3_kb, kb_server):
    kb_id = s3_kb[0]
    resp = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "tea"},
                       retrievalConfiguration={"vectorSearchConfiguration": {"filter": {"equals": {"key": "topic", "value": "geology"}}}})
    assert [r["location"]["s3Location"]["uri"].rsplit("/", 1)[1] for r in resp["retrievalResults"]] == ["volcano.txt"]
    _client_error(lambda: rt.retrieve(knowledgeBaseId="NOSUCHKB00", retrievalQuery={"text": "x"}), "ResourceNotFoundException")
    # Requests botocore would refuse client-side must be refused by the server too.
    raw = support.boto_client("bedrock-agent-runtime", kb_server.url, parameter_validation=False)
    for bad in (
        {"filter": {"andAll": [{"equals": {"key": "a", "value": 1}}]}},
        {"filter": {"greaterThan": {"key": "year", "value": "x"}}},
        {"filter": {"equals": {"key": "a", "value": 1}, "in": {"key": "a", "value": [1]}}},
        {"numberOfResults": 101},
        {"overrideSearchType": "FUZZY"},
    ):
        _client_error(lambda: raw.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "x"},
                      retrievalConfiguration={"vectorSearchConfiguration": bad}), "ValidationException")


def test_reingest_updates_changed_and_removes_deleted(agent, rt, bucket_dir, s3_kb):
    kb_id, ds_id, _ = s3_kb
    (bucket_dir / "docs/tea.md").write_text("# Brewing coffee\n\nAn espresso is brewed at nine bars of pressure in about 25 seconds.")
    (bucket_dir / "docs/planets.csv").unlink()
    (bucket_dir / "docs/volcano.txt.metadata.json").write_text(
        json.dumps({"metadataAttributes": {"topic": "volcanology", "year": 1883}}))
    job = _sync(agent, kb_id, ds_id)
    stats = job["statistics"]
    assert job["status"] == "COMPLETE"
    # tea.md's text and volcano.txt's sidecar changed.
    assert stats["numberOfModifiedDocumentsIndexed"] == 2
    assert stats["numberOfMetadataDocumentsModified"] == 1
    assert stats["numberOfDocumentsDeleted"] == 1
    assert stats["numberOfNewDocumentsIndexed"] == 0
    volcano = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "Krakatoa"}, retrievalConfiguration={
        "vectorSearchConfiguration": {"filter": {"equals": {"key": "topic", "value": "volcanology"}}}})
    assert [r["location"]["s3Location"]["uri"] for r in volcano["retrievalResults"]] == [f"s3://{BUCKET}/docs/volcano.txt"]
    everything = " ".join(_texts(rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "tea coffee moons Jupiter"},
                          retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 100}})))
    assert "espresso" in everything and "Green tea" not in everything and "Jupiter" not in everything
    again = _sync(agent, kb_id, ds_id)["statistics"]
    assert again["numberOfModifiedDocumentsIndexed"] == again["numberOfNewDocumentsIndexed"] == again["numberOfDocumentsDeleted"] == 0
    jobs = agent.list_ingestion_jobs(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                     sortBy={"attribute": "STARTED_AT", "order": "DESCENDING"})["ingestionJobSummaries"]
    assert len(jobs) == 3 and all(j["status"] == "COMPLETE" for j in jobs)
    assert jobs[0]["startedAt"] >= jobs[-1]["startedAt"]


# ---------------------------------------------------------------- CUSTOM sources


def _doc(doc_id: str, text: str, **attrs) -> dict:
    doc = {"content": {"dataSourceType": "CUSTOM", "custom": {
        "customDocumentIdentifier": {"id": doc_id}, "sourceType": "IN_LINE",
        "inlineContent": {"type": "TEXT", "textContent": {"data": text}}}}}
    if attrs:
        inline = []
        for k, v in attrs.items():
            if isinstance(v, bool):
                value = {"type": "BOOLEAN", "booleanValue": v}
            elif isinstance(v, (int, float)):
                value = {"type": "NUMBER", "numberValue": v}
            elif isinstance(v, list):
                value = {"type": "STRING_LIST", "stringListValue": v}
            else:
                value = {"type": "STRING", "stringValue": v}
            inline.append({"key": k, "value": value})
        doc["metadata"] = {"type": "IN_LINE_ATTRIBUTE", "inlineAttributes": inline}
    return doc


def _custom_source(agent, kb_id: str, name: str, chunking: dict | None = None) -> str:
    extra = {"vectorIngestionConfiguration": {"chunkingConfiguration": chunking}} if chunking else {}
    return agent.create_data_source(knowledgeBaseId=kb_id, name=name,
                                    dataSourceConfiguration={"type": "CUSTOM"}, **extra)["dataSource"]["dataSourceId"]


LONG_DOC = " ".join(
    [f"Section {i} is about the history of sailing ships and their rigging, sails and masts." for i in range(12)]
    + [f"Part {i} covers baking sourdough bread with flour, water, salt and a lively starter." for i in range(12)]
)


@pytest.mark.parametrize("name, chunking", [
    ("fixed", {"chunkingStrategy": "FIXED_SIZE", "fixedSizeChunkingConfiguration": {"maxTokens": 60, "overlapPercentage": 20}}),
    ("hier", {"chunkingStrategy": "HIERARCHICAL", "hierarchicalChunkingConfiguration": {
        "levelConfigurations": [{"maxTokens": 150}, {"maxTokens": 40}], "overlapTokens": 5}}),
    ("semantic", {"chunkingStrategy": "SEMANTIC", "semanticChunkingConfiguration": {
        "maxTokens": 120, "bufferSize": 1, "breakpointPercentileThreshold": 90}}),
    ("none", {"chunkingStrategy": "NONE"}),
])
def test_each_chunking_strategy(agent, rt, name, chunking):
    kb_id = _create_kb(agent, f"chunk-{name}")
    ds_id = _custom_source(agent, kb_id, name, chunking)
    details = agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                                    documents=[_doc("long", LONG_DOC)])["documentDetails"]
    assert details[0]["status"] == "INDEXED", details
    resp = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "sourdough starter"},
                       retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 100}})
    texts = _texts(resp)
    assert "sourdough" in texts[0]
    if name == "none":
        assert texts == [LONG_DOC]
    elif name == "hier":
        # Children are retrieved, their parents returned (the best one longer
        # than a 40-token child), each parent once however many of its
        # children matched: a few parents for the dozen children.
        assert len(texts[0].split()) > 40
        assert len(texts) == len(set(texts)) >= 2
        assert len(texts) <= 5, len(texts)
        children = resp["retrievalResults"]
        assert len({r["metadata"]["x-amz-bedrock-kb-chunk-id"] for r in children}) == len(texts)
    else:
        assert len(texts) >= 3
        assert all(len(t) < len(LONG_DOC) for t in texts)
    if name == "fixed":
        assert any(set(a.split()[-3:]) & set(b.split()[:8]) for a, b in zip(texts, texts[1:])) or len(texts) > 4
    if name == "semantic":
        assert any("sourdough" in t and "sailing" not in t for t in texts)
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


@pytest.fixture(scope="module")
def filter_kb(agent):
    kb_id = _create_kb(agent, "filters")
    ds_id = _custom_source(agent, kb_id, "docs")
    docs = [
        _doc("a", "Apples are crunchy fruit.", color="red", year=2019, tags=["fruit", "snack"], organic=True),
        _doc("b", "Bananas are soft fruit.", color="yellow", year=2021, tags=["fruit"], organic=False),
        _doc("c", "Carrots are crunchy vegetables.", color="orange", year=2023, tags=["vegetable", "snack"]),
        _doc("d", "Dates are sweet fruit.", year=2020),
    ]
    details = agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documents=docs)["documentDetails"]
    assert [d["status"] for d in details] == ["INDEXED"] * 4
    return kb_id, ds_id


@pytest.mark.parametrize("flt, expected", [
    ({"equals": {"key": "color", "value": "red"}}, {"a"}),
    ({"notEquals": {"key": "color", "value": "red"}}, {"b", "c", "d"}),
    ({"greaterThan": {"key": "year", "value": 2020}}, {"b", "c"}),
    ({"greaterThanOrEquals": {"key": "year", "value": 2020}}, {"b", "c", "d"}),
    ({"lessThan": {"key": "year", "value": 2020}}, {"a"}),
    ({"lessThanOrEquals": {"key": "year", "value": 2020}}, {"a", "d"}),
    ({"in": {"key": "color", "value": ["red", "yellow"]}}, {"a", "b"}),
    ({"notIn": {"key": "color", "value": ["red", "yellow"]}}, {"c", "d"}),
    ({"startsWith": {"key": "color", "value": "ye"}}, {"b"}),
    ({"listContains": {"key": "tags", "value": "snack"}}, {"a", "c"}),
    ({"stringContains": {"key": "color", "value": "ran"}}, {"c"}),
    ({"stringContains": {"key": "tags", "value": "veg"}}, {"c"}),
    ({"equals": {"key": "organic", "value": True}}, {"a"}),
    ({"andAll": [{"listContains": {"key": "tags", "value": "fruit"}}, {"greaterThan": {"key": "year", "value": 2020}}]}, {"b"}),
    ({"orAll": [{"equals": {"key": "color", "value": "red"}}, {"lessThanOrEquals": {"key": "year", "value": 2020}}]}, {"a", "d"}),
])
def test_every_filter_operator(rt, filter_kb, flt, expected):
    for search in ("SEMANTIC", "HYBRID"):
        resp = rt.retrieve(knowledgeBaseId=filter_kb[0], retrievalQuery={"text": "fruit and vegetables"},
                           retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 10, "overrideSearchType": search, "filter": flt}})
        got = {r["location"]["customDocumentLocation"]["id"] for r in resp["retrievalResults"]}
        assert got == expected, (search, flt)


def test_filter_on_the_data_source_id(agent, rt, filter_kb):
    kb_id, ds_id = filter_kb
    other = _custom_source(agent, kb_id, "other")
    agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=other,
                                          documents=[_doc("e", "Elderberries are dark fruit.")])
    key = "x-amz-bedrock-kb-data-source-id"
    for source, expected in ((ds_id, {"a", "b", "c", "d"}), (other, {"e"}), ("NOSUCHDS00", set())):
        for search in ("SEMANTIC", "HYBRID"):
            resp = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "fruit"}, retrievalConfiguration={
                "vectorSearchConfiguration": {"numberOfResults": 10, "overrideSearchType": search,
                                              "filter": {"equals": {"key": key, "value": source}}}})
            got = {r["location"]["customDocumentLocation"]["id"] for r in resp["retrievalResults"]}
            assert got == expected, (source, search)
            assert all(r["metadata"][key] == source for r in resp["retrievalResults"])
    agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=other)


def test_deleting_a_data_source_keeps_its_chunks_only_with_retain(agent, rt):
    kb_id = _create_kb(agent, "deletion-policy")
    sources = {}
    for policy, text in (("RETAIN", "Glaciers carve valleys over thousands of years."),
                         ("DELETE", "Glaciers calve icebergs into the sea.")):
        ds = agent.create_data_source(knowledgeBaseId=kb_id, name=policy.lower(), dataDeletionPolicy=policy,
                                      dataSourceConfiguration={"type": "CUSTOM"})["dataSource"]
        assert ds["dataDeletionPolicy"] == policy
        agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds["dataSourceId"],
                                              documents=[_doc(policy.lower(), text)])
        sources[policy] = ds["dataSourceId"]

    def found():
        resp = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "glaciers"})
        return {r["location"]["customDocumentLocation"]["id"] for r in resp["retrievalResults"]}

    assert found() == {"retain", "delete"}
    for ds_id in sources.values():
        assert agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id)["status"] == "DELETING"
    assert found() == {"retain"}
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_inline_files_are_parsed_and_a_bad_one_fails_alone(agent, rt):
    kb_id = _create_kb(agent, "inline-files")
    ds_id = _custom_source(agent, kb_id, "files")

    def file_doc(doc_id: str, data: bytes, mime: str) -> dict:
        # botocore base64-encodes the blob itself.
        return {"content": {"dataSourceType": "CUSTOM", "custom": {
            "customDocumentIdentifier": {"id": doc_id}, "sourceType": "IN_LINE",
            "inlineContent": {"type": "BYTE", "byteContent": {"mimeType": mime, "data": data}}}}}

    details = agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documents=[
        file_doc("broken", b"%PDF-1.4\nthis is not really a pdf\n%%EOF", "application/pdf"),
        file_doc("manual", _pdf("The boiler pressure valve must be checked every spring."), "application/pdf"),
        file_doc("page", b"<html><body><p>Lanterns were lit with whale oil.</p></body></html>", "text/html"),
        _doc("note", "Plain text still works beside files."),
    ])["documentDetails"]
    assert [d["status"] for d in details] == ["FAILED", "INDEXED", "INDEXED", "INDEXED"], [d.get("statusReason") for d in details]
    assert details[0]["statusReason"]
    got = agent.get_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documentIdentifiers=[
        {"dataSourceType": "CUSTOM", "custom": {"id": "broken"}}])["documentDetails"]
    assert got[0]["status"] == "FAILED"
    top = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "boiler pressure valve"})["retrievalResults"][0]
    assert "pressure valve" in top["content"]["text"]
    assert top["location"]["customDocumentLocation"]["id"] == "manual"
    # An unsupported type is refused before anything is ingested.
    _client_error(lambda: agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                  documents=[file_doc("img", b"\x89PNG", "image/png")]), "ValidationException")
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_documents_get_list_delete_and_pagination(agent, rt, filter_kb):
    kb_id, ds_id = filter_kb
    ident = lambda i: {"dataSourceType": "CUSTOM", "custom": {"id": i}}  # noqa: E731
    got = agent.get_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                             documentIdentifiers=[ident("a"), ident("zzz")])["documentDetails"]
    assert [d["status"] for d in got] == ["INDEXED", "NOT_FOUND"]
    listed = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, maxResults=3)
    assert len(listed["documentDetails"]) == 3 and "nextToken" in listed
    rest = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, maxResults=3, nextToken=listed["nextToken"])
    assert len(rest["documentDetails"]) == 1 and "nextToken" not in rest
    page1 = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "fruit"},
                        retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 2}})
    assert len(page1["retrievalResults"]) == 2 and "nextToken" in page1
    page2 = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "fruit"}, nextToken=page1["nextToken"],
                        retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 2}})
    ids = lambda p: [r["location"]["customDocumentLocation"]["id"] for r in p["retrievalResults"]]  # noqa: E731
    assert len(page2["retrievalResults"]) == 2 and not set(ids(page1)) & set(ids(page2))
    deleted = agent.delete_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                                    documentIdentifiers=[ident("d")])["documentDetails"]
    assert deleted[0]["status"] == "DELETING"
    after = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "dates sweet fruit"},
                        retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 10}})
    assert "d" not in ids(after)
    _client_error(lambda: agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                  documents=[_doc("x", "y")] * 11), "ValidationException")


def _index_gauges(url: str, kb_id: str) -> tuple[float, float] | None:
    """(chunks, graph) from /metrics for one knowledge base, or None if absent."""
    text = support.get_metrics(url)
    gauges = tuple(support.metric_sum(text, name, knowledge_base=kb_id)
                   for name in ("basalt_knowledge_index_chunks", "basalt_knowledge_index_graph"))
    return None if gauges == (None, None) else gauges


def test_a_new_knowledge_base_indexes_in_memory_from_the_start(agent, kb_server):
    """Ingestion fills the in-memory index of a new knowledge base as it goes,
    so the first Retrieve has nothing to load; /metrics shows it."""
    kb_id = _create_kb(agent, "live-index")
    assert _index_gauges(kb_server.url, kb_id) == (0, 0)
    ds_id = _custom_source(agent, kb_id, "notes", {"chunkingStrategy": "NONE"})
    agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documents=[
        _doc("a", "Lighthouses guide ships at night."), _doc("b", "Sourdough needs a starter."),
        _doc("c", "Glaciers carve valleys.")])
    assert _index_gauges(kb_server.url, kb_id) == (3, 0)
    agent.delete_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documentIdentifiers=[
        {"dataSourceType": "CUSTOM", "custom": {"id": "b"}}])
    assert _index_gauges(kb_server.url, kb_id) == (2, 0)
    agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id)
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)
    assert _index_gauges(kb_server.url, kb_id) is None

def _graph_origins(srv) -> list[str]:
    """How each HNSW graph this server installed came to be (Built, Saved,
    Patched(n)), from its log, oldest first."""
    log = re.sub(r"\x1b\[[0-9;]*m", "", srv.stderr_path.read_text(errors="replace"))
    return re.findall(r"HNSW graph ready .*origin=(\S+)", log)


def _wait_graph(srv, kb_id: str) -> None:
    """Until the server has installed (and saved) a graph and uses it for the
    knowledge base."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _graph_origins(srv) and _index_gauges(srv.url, kb_id)[1] == 1:
            return
        time.sleep(0.2)
    raise AssertionError(f"no HNSW graph in use after 60 s:\n{srv.stderr_tail()}")


def test_the_hnsw_graph_is_saved_and_read_back_after_a_restart_or_a_crash(start_server):
    """A knowledge base past `hnsw_from_chunks` searches an HNSW graph. It is
    saved to the data directory, so a restart reads it back instead of
    building it again; after a crash, chunks written since the save are patched
    in, and a file holding a chunk since deleted is not trusted."""
    srv = start_server("hnsw", hnsw_from_chunks=4)
    agent = support.boto_client("bedrock-agent", srv.url)
    kb_id = _create_kb(agent, "graph")
    ds_id = _custom_source(agent, kb_id, "facts", {"chunkingStrategy": "NONE"})
    facts = {"owl": "Owls hunt mice at night.", "kiln": "A kiln fires clay pots.",
             "tide": "The moon pulls the tides.", "fern": "Ferns spread by spores.",
             "ice": "Glaciers carve valleys.", "bee": "Bees make honey from nectar."}

    def ingest(*ids):
        agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                              documents=[_doc(i, facts[i]) for i in ids])

    # Past the 100 candidates a Retrieve takes, so searches walk the graph
    # rather than fall back to the exact scan.
    for start in range(0, 120, 10):
        agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documents=[
            _doc(f"stock{i}", f"Inventory record {i}: crate {i} holds {i % 7 + 2} spare bolts.")
            for i in range(start, start + 10)])

    def delete(*ids):
        agent.delete_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documentIdentifiers=[
            {"dataSourceType": "CUSTOM", "custom": {"id": i}} for i in ids])

    def top(text: str) -> list[str]:
        rt = support.boto_client("bedrock-agent-runtime", srv.url)
        hits = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": text}, retrievalConfiguration={
            "vectorSearchConfiguration": {"numberOfResults": 2, "overrideSearchType": "SEMANTIC"}})
        return [h["location"]["customDocumentLocation"]["id"] for h in hits["retrievalResults"]]

    def restart(stop) -> str:
        """Stops the server (cleanly or not), starts it, and says where the
        graph it now uses came from."""
        stop()
        srv.start()
        _wait_graph(srv, kb_id)
        return _graph_origins(srv)[-1]

    ingest("owl", "kiln", "tide", "fern")
    _wait_graph(srv, kb_id)
    assert _graph_origins(srv) == ["Built"]
    saved = srv.data_dir / "hnsw" / f"{kb_id}.usearch"
    assert saved.exists(), "the built graph is saved"
    assert top("which animal hunts at night")[0] == "owl"

    # A clean stop saves what changed since; the restart reads it as is.
    ingest("ice")
    delete("kiln")
    assert restart(srv.stop) == "Saved"
    assert top("rivers of ice shaping the land")[0] == "ice"
    assert "kiln" not in top("pottery oven")

    # A crash loses the save of a later write: the chunk is patched in.
    ingest("bee")
    assert restart(srv.crash) == "Patched(1)"
    assert top("insects and honey")[0] == "bee"

    # A crash after a delete: the file holds a chunk the store no longer has,
    # so the graph is built again, without it.
    delete("owl")
    assert restart(srv.crash) == "Built"
    assert "owl" not in top("which animal hunts at night")
    assert _index_gauges(srv.url, kb_id) == (124, 1)

    # Deleting the knowledge base deletes its graph.
    agent = support.boto_client("bedrock-agent", srv.url)
    agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id)
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)
    assert not saved.exists()
    srv.stop()

# ---------------------------------------------------------------- RetrieveAndGenerate


def _input_tokens(url: str) -> float:
    return support.metric_sum(support.get_metrics(url), "basalt_input_tokens_total", model=MODEL_ID) or 0.0


def test_a_session_carries_the_conversation_to_the_model(rt, filter_kb, kb_server):
    """A follow-up in a session sends the model the earlier turn: with every
    chunk retrieved (so both prompts hold the same search results), the
    follow-up costs the first turn's question and answer more input tokens
    than the same question asked afresh."""
    kb_cfg = {"knowledgeBaseId": filter_kb[0], "modelArn": MODEL_ID,
              "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 20}},
              "generationConfiguration": {"inferenceConfig": {"textInferenceConfig": {"maxTokens": 16, "temperature": 0}}}}
    config = {"type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": kb_cfg}
    follow_up = "And which one is soft?"
    before = _input_tokens(kb_server.url)
    rt.retrieve_and_generate(input={"text": follow_up}, retrieveAndGenerateConfiguration=config)
    fresh = _input_tokens(kb_server.url) - before
    first = rt.retrieve_and_generate(input={"text": "Which fruit is crunchy?"}, retrieveAndGenerateConfiguration=config)
    before = _input_tokens(kb_server.url)
    second = rt.retrieve_and_generate(input={"text": follow_up}, sessionId=first["sessionId"],
                                      retrieveAndGenerateConfiguration=config)
    in_session = _input_tokens(kb_server.url) - before
    assert second["sessionId"] == first["sessionId"]
    assert fresh > 0 and in_session >= fresh + 5, (fresh, in_session, first["output"]["text"])


def test_retrieve_and_generate_cites_and_keeps_a_session(rt, filter_kb):
    kb_id = filter_kb[0]
    config = {"type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": {
        "knowledgeBaseId": kb_id, "modelArn": MODEL_ID,
        "generationConfiguration": {"inferenceConfig": {"textInferenceConfig": {"maxTokens": 48, "temperature": 0}}}}}
    first = rt.retrieve_and_generate(input={"text": "Which fruit is crunchy?"}, retrieveAndGenerateConfiguration=config)
    text = first["output"]["text"]
    assert text and first["sessionId"]
    for c in first.get("citations", []):
        part = c["generatedResponsePart"]["textResponsePart"]
        assert text[part["span"]["start"]:part["span"]["end"]] == part["text"]
        for ref in c["retrievedReferences"]:
            assert ref["content"]["text"] and ref["location"]["type"] == "CUSTOM"
    second = rt.retrieve_and_generate(input={"text": "And which one is soft?"}, sessionId=first["sessionId"],
                                      retrieveAndGenerateConfiguration=config)
    assert second["sessionId"] == first["sessionId"] and second["output"]["text"]
    _client_error(lambda: rt.retrieve_and_generate(input={"text": "hi"}, sessionId="no-such-session",
                  retrieveAndGenerateConfiguration=config), "ResourceNotFoundException")
    templated = dict(config)
    templated["knowledgeBaseConfiguration"] = dict(config["knowledgeBaseConfiguration"], generationConfiguration={
        "promptTemplate": {"textPromptTemplate": "Answer with one word using only these results:\n$search_results$"},
        "inferenceConfig": {"textInferenceConfig": {"maxTokens": 16, "temperature": 0}}})
    assert rt.retrieve_and_generate(input={"text": "Which fruit is soft?"}, retrieveAndGenerateConfiguration=templated)["output"]["text"]


MODEL_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL_ID}"


# How far the same pair's score may move between calls: llama.cpp's numbers
# change with how pairs are batched and how much of a prompt comes from the
# prefix cache (0.033 apart was seen in CI).
RERANK_CLOSE = 0.08


def _rerank_config(model: str = MODEL_ARN, **extra) -> dict:
    return {"type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {"modelConfiguration": {"modelArn": model}, **extra}}


def _rerank(rt, query: str, docs: list, **extra) -> list[dict]:
    sources = [{"type": "INLINE", "inlineDocumentSource": (
        {"type": "TEXT", "textDocument": {"text": d}} if isinstance(d, str) else {"type": "JSON", "jsonDocument": d})}
        for d in docs]
    return rt.rerank(queries=[{"type": "TEXT", "textQuery": {"text": query}}], sources=sources,
                     rerankingConfiguration=_rerank_config(**extra))["results"]


def test_rerank_scores_every_document_with_the_local_model(rt, kb_server):
    docs = ["Paris is the capital and largest city of France.", "Bananas are yellow fruit.",
            {"title": "Lyon", "text": "Lyon is a city in France."}]
    results = _rerank(rt, "What is the capital of France?", docs)
    assert sorted(r["index"] for r in results) == [0, 1, 2]
    scores = [r["relevanceScore"] for r in results]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert len(set(scores)) == 3, "each document gets its own score"
    for r in results:
        doc = docs[r["index"]]
        assert r["document"] == ({"type": "TEXT", "textDocument": {"text": doc}} if isinstance(doc, str)
                                 else {"type": "JSON", "jsonDocument": doc})
    # numberOfResults keeps the best ones. A repeat reuses cached prompt
    # prefixes, which moves scores a little (RERANK_CLOSE).
    top = _rerank(rt, "What is the capital of France?", docs, numberOfResults=2)
    assert len(top) == 2
    again = {r["index"]: r["relevanceScore"] for r in top}
    for r in results:
        if r["index"] in again:
            assert again[r["index"]] == pytest.approx(r["relevanceScore"], abs=RERANK_CLOSE)
    if scores[1] - scores[2] > RERANK_CLOSE:
        assert set(again) == {r["index"] for r in results[:2]}
    served = support.metric_sum(support.get_metrics(kb_server.url), "basalt_requests_total",
                                api="Rerank", model=MODEL_ID, status="ok")
    assert served == 2


def test_rerank_bad_requests(rt):
    query = [{"type": "TEXT", "textQuery": {"text": "q"}}]
    doc = [{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": "d"}}}]
    _client_error(lambda: rt.rerank(queries=query, sources=doc, rerankingConfiguration=_rerank_config(EMBED_ARN)),
                  "ValidationException")
    _client_error(lambda: rt.rerank(queries=query, sources=doc, rerankingConfiguration=_rerank_config(
        "arn:aws:bedrock:us-east-1::foundation-model/no.such-model")), "ResourceNotFoundException")
    _client_error(lambda: rt.rerank(queries=query * 2, sources=doc, rerankingConfiguration=_rerank_config()),
                  "ValidationException")
    _client_error(lambda: rt.rerank(queries=query, sources=doc, rerankingConfiguration={
        "type": "OTHER", "bedrockRerankingConfiguration": {"modelConfiguration": {"modelArn": MODEL_ARN}}}),
        "ValidationException")
    _client_error(lambda: rt.rerank(queries=query, sources=[{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT"}}],
                                    rerankingConfiguration=_rerank_config()), "ValidationException")


def test_retrieve_reranks_with_the_local_model(rt, filter_kb):
    """Retrieve's rerankingConfiguration reorders the retrieved chunks by the
    reranker's score (the same score the Rerank API gives the same text) and
    keeps numberOfRerankedResults; RetrieveAndGenerate takes it too."""
    kb_id = filter_kb[0]
    query = "Which fruit is crunchy?"
    vector = {"numberOfResults": 4, "overrideSearchType": "HYBRID",
              "rerankingConfiguration": _rerank_config(numberOfRerankedResults=2)}
    got = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": query},
                      retrievalConfiguration={"vectorSearchConfiguration": vector})["retrievalResults"]
    assert len(got) == 2
    texts = _texts({"retrievalResults": got})
    direct = _rerank(rt, query, texts)
    by_text = {texts[r["index"]]: r["relevanceScore"] for r in direct}
    # Scores are the reranker's probabilities (fused ranks would be < 0.04),
    # as close as the same pair's score across calls.
    for r in got:
        assert r["score"] == pytest.approx(by_text[r["content"]["text"]], abs=RERANK_CLOSE)
    assert got[0]["score"] >= got[1]["score"]
    # The best of the 4 retrieved is kept.
    everything = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": query}, retrievalConfiguration={
        "vectorSearchConfiguration": {"numberOfResults": 4, "overrideSearchType": "HYBRID"}})
    assert len(everything["retrievalResults"]) >= 2
    all_scores = [r["relevanceScore"] for r in _rerank(rt, query, _texts(everything))]
    assert got[0]["score"] == pytest.approx(max(all_scores), abs=RERANK_CLOSE)
    selective = dict(vector, rerankingConfiguration=_rerank_config(metadataConfiguration={
        "selectionMode": "SELECTIVE", "selectiveModeConfiguration": {"fieldsToInclude": [{"fieldName": "color"}]}}))
    assert rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": query},
                       retrievalConfiguration={"vectorSearchConfiguration": selective})["retrievalResults"]
    bad = dict(vector, rerankingConfiguration=_rerank_config(metadataConfiguration={"selectionMode": "SOME"}))
    _client_error(lambda: rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": query},
                                      retrievalConfiguration={"vectorSearchConfiguration": bad}), "ValidationException")
    config = {"type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": {
        "knowledgeBaseId": kb_id, "modelArn": MODEL_ID,
        "retrievalConfiguration": {"vectorSearchConfiguration": vector},
        "generationConfiguration": {"inferenceConfig": {"textInferenceConfig": {"maxTokens": 16, "temperature": 0}}}}}
    answer = rt.retrieve_and_generate(input={"text": query}, retrieveAndGenerateConfiguration=config)
    assert answer["output"]["text"]
    refs = [ref["content"]["text"] for c in answer.get("citations", []) for ref in c["retrievedReferences"]]
    assert set(refs) <= set(texts)


def test_guardrails_on_retrieve_and_generate(rt, filter_kb, kb_server):
    """A guardrail on RetrieveAndGenerate checks the answer (here: any output
    is blocked) and on Retrieve checks the query."""
    control = support.boto_client("bedrock", kb_server.url)
    gid = control.create_guardrail(
        name="kb-guard", blockedInputMessaging="no input", blockedOutputsMessaging="no output",
        wordPolicyConfig={"wordsConfig": [{"text": "forbidden fruit", "outputEnabled": False}]},
        sensitiveInformationPolicyConfig={"regexesConfig": [
            {"name": "ANY", "pattern": r"\S", "action": "BLOCK", "inputEnabled": False}]},
    )["guardrailId"]
    guard = {"guardrailId": gid, "guardrailVersion": "DRAFT"}
    config = {"type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": {
        "knowledgeBaseId": filter_kb[0], "modelArn": MODEL_ID,
        "generationConfiguration": {"guardrailConfiguration": guard,
                                    "inferenceConfig": {"textInferenceConfig": {"maxTokens": 16, "temperature": 0}}}}}
    out = rt.retrieve_and_generate(input={"text": "Which fruit is crunchy?"}, retrieveAndGenerateConfiguration=config)
    assert out["guardrailAction"] == "INTERVENED"
    assert out["output"]["text"] == "no output"
    assert out.get("citations", []) == []
    blocked = rt.retrieve(knowledgeBaseId=filter_kb[0], retrievalQuery={"text": "tell me about the forbidden fruit"},
                          guardrailConfiguration=guard)
    assert blocked["guardrailAction"] == "INTERVENED" and blocked["retrievalResults"] == []
    fine = rt.retrieve(knowledgeBaseId=filter_kb[0], retrievalQuery={"text": "crunchy fruit"},
                       guardrailConfiguration=guard)
    assert fine["guardrailAction"] == "NONE" and fine["retrievalResults"]


def test_citations_point_at_supporting_chunks(rt, filter_kb, kb_server):
    """The citation machinery itself, with a model answer that quotes a source."""
    kb_id = filter_kb[0]
    config = {"type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": {
        "knowledgeBaseId": kb_id, "modelArn": MODEL_ID,
        "generationConfiguration": {
            "promptTemplate": {"textPromptTemplate": "Repeat the first search result word for word.\n$search_results$"},
            "inferenceConfig": {"textInferenceConfig": {"maxTokens": 24, "temperature": 0}}}}}
    resp = rt.retrieve_and_generate(input={"text": "Apples are crunchy fruit."}, retrieveAndGenerateConfiguration=config)
    text = resp["output"]["text"]
    for c in resp.get("citations", []):
        part = c["generatedResponsePart"]["textResponsePart"]
        assert text[part["span"]["start"]:part["span"]["end"]] == part["text"]
    if "crunchy" in text.lower():
        assert resp["citations"], "an answer quoting a source must cite it"


# ---------------------------------------------------------------- crash safety


def test_ingestion_job_survives_a_crash(start_server, tmp_path):
    root = tmp_path / "big"
    (root / "notes").mkdir(parents=True)
    for i in range(240):
        (root / f"notes/note{i:03d}.txt").write_text(
            f"Note {i}. " + " ".join(f"The harbour log entry {i}-{j} records wind, tide and cargo." for j in range(12))
        )
    srv = start_server("kb-crash", buckets={"big-bucket": str(root)})
    agent = support.boto_client("bedrock-agent", srv.url)
    kb_id = _create_kb(agent, "crash-kb")
    ds_id = agent.create_data_source(knowledgeBaseId=kb_id, name="notes", dataSourceConfiguration={
        "type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::big-bucket"}})["dataSource"]["dataSourceId"]
    job_id = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]["ingestionJobId"]
    _client_error(lambda: agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id), "ConflictException")
    _client_error(lambda: agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id), "ConflictException")
    time.sleep(1.0)
    before = agent.get_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id, ingestionJobId=job_id)["ingestionJob"]
    srv.crash()
    assert before["status"] == "IN_PROGRESS", "the crash must interrupt the job for this test to mean anything"
    indexed_before = before["statistics"]["numberOfNewDocumentsIndexed"]
    srv.start()
    agent = support.boto_client("bedrock-agent", srv.url)
    job = _wait_job(agent, kb_id, ds_id, job_id)
    assert job["status"] == "COMPLETE", job
    docs = []
    token = None
    while True:
        kw = {"nextToken": token} if token else {}
        page = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, maxResults=100, **kw)
        docs += page["documentDetails"]
        token = page.get("nextToken")
        if not token:
            break
    assert len(docs) == 240 and all(d["status"] == "INDEXED" for d in docs)
    # The resumed run rescanned everything and counted each document once.
    assert indexed_before < 240
    assert job["statistics"]["numberOfDocumentsScanned"] == 240
    assert job["statistics"]["numberOfNewDocumentsIndexed"] == 240
    # The restarted server loads the index while the resumed job writes to
    # it: notes written before, during and after that load are all found.
    rt = support.boto_client("bedrock-agent-runtime", srv.url)
    for i in (0, indexed_before, 117, 200, 239):
        hits = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": f"Note {i}: harbour log entry {i}-3"},
                           retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 5, "overrideSearchType": "HYBRID"}})
        found = [h["location"]["s3Location"]["uri"].rsplit("/", 1)[1] for h in hits["retrievalResults"]]
        assert f"note{i:03d}.txt" in found, (i, found)
    srv.stop()


def test_a_stopped_job_keeps_what_it_indexed_and_the_next_job_does_the_rest(start_server, tmp_path):
    root = tmp_path / "stop"
    root.mkdir()
    # Sorted after the notes: a stopped scan never reaches it, and must not
    # take it for deleted.
    (root / "zz-keep.txt").write_text("The lighthouse on the north cape was painted red and white in 1921.")
    srv = start_server("kb-stop", buckets={"stop-bucket": str(root)})
    agent = support.boto_client("bedrock-agent", srv.url)
    rt = support.boto_client("bedrock-agent-runtime", srv.url)
    kb_id = _create_kb(agent, "stop-kb")
    ds_id = agent.create_data_source(knowledgeBaseId=kb_id, name="notes", dataSourceConfiguration={
        "type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::stop-bucket"}})["dataSource"]["dataSourceId"]
    first = _sync(agent, kb_id, ds_id)
    assert first["status"] == "COMPLETE" and first["statistics"]["numberOfNewDocumentsIndexed"] == 1
    # About three default chunks a note: the job embeds them some 40 notes at
    # a time, and is stopped once it has indexed the first of them.
    for i in range(90):
        (root / f"note{i:03d}.txt").write_text(
            f"Note {i}. " + " ".join(f"The depot ledger line {i}-{j} lists crates, barrels and sacks of grain." for j in range(40))
        )
    ids = dict(knowledgeBaseId=kb_id, dataSourceId=ds_id)
    job_id = agent.start_ingestion_job(**ids)["ingestionJob"]["ingestionJobId"]
    deadline = time.monotonic() + 120
    while agent.get_ingestion_job(**ids, ingestionJobId=job_id)["ingestionJob"]["statistics"]["numberOfNewDocumentsIndexed"] == 0:
        assert time.monotonic() < deadline, "the job indexed nothing in 120 s"
        time.sleep(0.05)
    stopping = agent.stop_ingestion_job(**ids, ingestionJobId=job_id)["ingestionJob"]
    assert stopping["ingestionJobId"] == job_id and stopping["status"] in ("STOPPING", "STOPPED"), stopping
    stopped = _wait_job(agent, kb_id, ds_id, job_id)
    assert stopped["status"] == "STOPPED", stopped
    stats = stopped["statistics"]
    assert 0 < stats["numberOfNewDocumentsIndexed"] < 90 and stats["numberOfDocumentsDeleted"] == 0, stats
    # Ended jobs, the stopped one included, cannot be stopped; unknown ones are not found.
    assert "STOPPED" in _client_error(lambda: agent.stop_ingestion_job(**ids, ingestionJobId=job_id), "ConflictException")
    _client_error(lambda: agent.stop_ingestion_job(**ids, ingestionJobId=first["ingestionJobId"]), "ConflictException")
    _client_error(lambda: agent.stop_ingestion_job(**ids, ingestionJobId="NOSUCHJOB1"), "ResourceNotFoundException")
    kept = agent.get_knowledge_base_documents(**ids, documentIdentifiers=[
        {"dataSourceType": "S3", "s3": {"uri": "s3://stop-bucket/zz-keep.txt"}}])["documentDetails"]
    assert kept[0]["status"] == "INDEXED", kept
    listed = agent.list_ingestion_jobs(**ids, filters=[{"attribute": "STATUS", "operator": "EQ", "values": ["STOPPED"]}])
    assert [j["ingestionJobId"] for j in listed["ingestionJobSummaries"]] == [job_id]
    # The next job indexes what the stopped one did not reach, and nothing twice.
    rest = _sync(agent, kb_id, ds_id)
    assert rest["status"] == "COMPLETE", rest
    assert rest["statistics"]["numberOfNewDocumentsIndexed"] == 90 - stats["numberOfNewDocumentsIndexed"]
    assert rest["statistics"]["numberOfDocumentsDeleted"] == 0
    hits = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "depot ledger line 89-7"},
                       retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 5, "overrideSearchType": "HYBRID"}})
    assert "note089.txt" in [h["location"]["s3Location"]["uri"].rsplit("/", 1)[1] for h in hits["retrievalResults"]]
    srv.stop()


# ---------------------------------------------------------------- CLI


def test_cli_kb_ingest_syncs_a_directory(kb_server, rt, agent, tmp_path):
    d = tmp_path / "handbook"
    (d / "hr").mkdir(parents=True)
    (d / "hr/leave.md").write_text("# Leave\n\nEmployees get twenty-five days of paid annual leave.")
    (d / "hr/leave.md.metadata.json").write_text(json.dumps({"metadataAttributes": {"team": "hr"}}))
    (d / "it.txt").write_text("Reset your laptop password at the IT service desk on floor two.")
    (d / "faq.html").write_text("<p>The office opens at <b>8 am</b>.</p>")
    (d / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    run = kb_server.run_cli("kb", "ingest", str(d), "--url", kb_server.url, "--name", "handbook", timeout=120)
    assert run.returncode == 0, run.stderr
    assert "3 indexed, 0 removed, 0 failed, 1 skipped" in run.stdout
    kb_id = next(k["knowledgeBaseId"] for k in agent.list_knowledge_bases()["knowledgeBaseSummaries"] if k["name"] == "handbook")
    hits = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "how many vacation days"},
                       retrievalConfiguration={"vectorSearchConfiguration": {"filter": {"equals": {"key": "team", "value": "hr"}}}})
    assert [h["location"]["customDocumentLocation"]["id"] for h in hits["retrievalResults"]] == ["hr/leave.md"]
    (d / "it.txt").unlink()
    again = kb_server.run_cli("kb", "ingest", str(d), "--url", kb_server.url, "--name", "handbook", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "2 indexed, 1 removed" in again.stdout
    left = rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "laptop password"},
                       retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 10}})
    assert "it.txt" not in [h["location"]["customDocumentLocation"]["id"] for h in left["retrievalResults"]]
