"""Knowledge-base benchmarks; run through scripts/bench-kb (see there)."""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.config

EMBED = "sentence-transformers.all-minilm-l6-v2"
ROLE = "arn:aws:iam::000000000000:role/bench"


class Collection:
    """A test collection: documents (id -> text, and titles where it has
    them), queries that have judgments (id -> text), and judgments
    (query id -> {document id: graded relevance > 0})."""

    def __init__(self, name, docs, titles, queries, rel):
        self.name, self.docs, self.titles, self.queries, self.rel = name, docs, titles, queries, rel
        if not docs or not queries:
            raise SystemExit(f"{name}: no documents or no judged queries were read")

    def short_texts(self) -> list[str]:
        """Distinct short texts for timed queries: the titles, or each
        document's first ten words."""
        seen, out = set(), []
        for d, text in self.docs.items():
            t = self.titles.get(d) or " ".join(text.split()[:10])
            if t and t not in seen:
                seen.add(t)
                out.append(t)
        return out


def _find(d: Path, patterns: list[str]) -> Path | None:
    for pattern in patterns:
        hits = sorted(p for p in d.iterdir() if p.is_file() and re.fullmatch(pattern, p.name, flags=re.I))
        if hits:
            return hits[0]
    return None


def _smart_records(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Records of a SMART/Glasgow file (`.I id`, then `.T`, `.W`, ... fields)."""
    out = []
    for rec in re.split(r"^\.I\s+", path.read_text(errors="replace"), flags=re.M)[1:]:
        rid, _, body = rec.partition("\n")
        fields = {}
        for tag, text in re.findall(r"^\.([A-Z])\s*\n(.*?)(?=^\.[A-Z]\s*$|\Z)", body, flags=re.M | re.S):
            fields[tag] = (fields.get(tag, "") + " " + text).strip()
        out.append((rid.strip(), fields))
    return out


def _norm(i: str) -> str:
    """An id without leading zeros (judgment files pad some, ALL files not)."""
    return i.lstrip("0") or "0"


def _judgments(path: Path) -> dict[str, dict[str, float]]:
    """Relevance judgments: `qid docid ...` lines (CISI, CACM, CRAN), or TREC
    qrels `qid iter docid grade` (the second column all zeros), or a BEIR
    `query-id corpus-id score` TSV. Only grades above zero count."""
    rows = [line.split() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    headed = bool(rows) and not rows[0][-1].lstrip("-").replace(".", "", 1).isdigit()
    if headed:
        rows = rows[1:]
    trec = len(rows) > 1 and all(len(r) == 4 and r[1] == "0" for r in rows) and any(r[3] != "0" for r in rows)
    rel: dict[str, dict[str, float]] = {}
    for r in rows:
        if len(r) < 2:
            continue
        if trec:
            qid, did, grade = r[0], r[2], float(r[3])
        elif headed and len(r) >= 3:
            qid, did, grade = r[0], r[1], float(r[2])
        else:  # listed = relevant (CRAN's third column ranks 1-4; -1 is not relevant)
            qid, did, grade = r[0], r[1], 1.0 if len(r) != 3 or float(r[2]) > 0 else 0.0
        if grade > 0:
            rel.setdefault(_norm(qid), {})[_norm(did)] = grade
    return rel


def load_collection(d: Path) -> Collection:
    """A test collection in SMART/Glasgow form (CISI, CACM, MED, CRAN, ...:
    `*.ALL`, `*.QRY`, `*.REL` or `qrels*`) or BEIR form (`corpus.jsonl`,
    `queries.jsonl`, `qrels/test.tsv`). Ids are compared without leading
    zeros. A SMART document is its title and abstract (`.T`, `.W`)."""
    if (d / "corpus.jsonl").exists():
        docs, titles, queries = {}, {}, {}
        for line in (d / "corpus.jsonl").read_text().splitlines():
            if line.strip():
                o = json.loads(line)
                docs[_norm(str(o["_id"]))] = " ".join(x for x in (o.get("title", ""), o.get("text", "")) if x)
                titles[_norm(str(o["_id"]))] = o.get("title", "")
        for line in (d / "queries.jsonl").read_text().splitlines():
            if line.strip():
                o = json.loads(line)
                queries[_norm(str(o["_id"]))] = o["text"]
        qrels = _find(d / "qrels", [r"test\.tsv", r".*\.tsv"]) if (d / "qrels").is_dir() else None
        if qrels is None:
            raise SystemExit(f"{d}: a BEIR collection needs qrels/test.tsv")
        rel = _judgments(qrels)
    else:
        all_, qry, rl = (_find(d, pats) for pats in (
            [r".*\.all(\.\d+)?"], [r".*\.qry(\.\w+)?"], [r".*\.rel", r"qrels.*", r".*qrel.*"]))
        if not (all_ and qry and rl):
            raise SystemExit(f"{d}: expected a SMART/Glasgow collection (*.ALL, *.QRY, *.REL) "
                             "or a BEIR one (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
        docs, titles = {}, {}
        for rid, f in _smart_records(all_):
            docs[_norm(rid)] = f"{f.get('T', '')} {f.get('W', '')}".strip()
            titles[_norm(rid)] = " ".join(f.get("T", "").split())
        # Queries are numbered by position in some collections (CRAN) and
        # judged by that number, so both are tried.
        records = _smart_records(qry)
        rel = _judgments(rl)
        texts = [(rid, " ".join((f.get("W") or " ".join(f.values())).split())) for rid, f in records]
        by_id = {_norm(rid): text for rid, text in texts}
        by_pos = {str(n): text for n, (_, text) in enumerate(texts, 1)}
        queries = by_id if len(rel.keys() & by_id.keys()) >= len(rel.keys() & by_pos.keys()) else by_pos
    rel = {q: {dd: g for dd, g in j.items() if dd in docs} for q, j in rel.items()}
    queries = {q: t for q, t in queries.items() if rel.get(q) and t}
    return Collection(d.name, docs, titles, queries, rel)


def metrics(ranking: list[str], judged: dict[str, float]):
    """nDCG@10 (graded gains), recall@10 and average precision (top 100)."""
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sorted(judged.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    recall = len(set(ranking[:10]) & judged.keys()) / len(judged)
    hits, ap = 0, 0.0
    for i, d in enumerate(ranking):
        if d in judged:
            hits += 1
            ap += hits / (i + 1)
    return dcg / idcg, recall, ap / len(judged)


def summarize(name, per_query):
    n = len(per_query)
    nd, rc, mp = (sum(x[i] for x in per_query) / n for i in range(3))
    return f"| {name} | {nd:.4f} | {rc:.4f} | {mp:.4f} |"


class Server:
    def __init__(self, binary, embed_model, threads, buckets, rerank_model=None, hnsw_from_chunks=50_000,
                 encoder_kernel=True):
        self.dir = Path(tempfile.mkdtemp(prefix="basalt-bench-kb-"))
        self.port = 18190
        self.url = f"http://127.0.0.1:{self.port}"
        bucket_toml = ", ".join(f'"{k}" = "{v}"' for k, v in buckets.items())
        (self.dir / "basalt.toml").write_text(f"""
[server]
listen = "127.0.0.1:{self.port}"
request_timeout_seconds = 3600
[store]
data_dir = "{self.dir / 'data'}"
[knowledge]
buckets = {{ {bucket_toml} }}
hnsw_from_chunks = {hnsw_from_chunks}
[[models]]
id = "{EMBED}"
kind = "embedding"
context_window = 256
threads = {threads}
parallel = 32
batch_tokens = 256
encoder_kernel = {str(encoder_kernel).lower()}
[models.source]
path = "{embed_model}"
""" + (f"""
[[models]]
id = "reranker"
chat_template = "gemma"
context_window = 2048
threads = {threads}
parallel = 8
[models.source]
path = "{rerank_model}"
""" if rerank_model else ""))
        self.binary = binary
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.binary, "serve", "--config", str(self.dir / "basalt.toml")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "ab"))
        for _ in range(2400):
            try:
                urllib.request.urlopen(self.url + "/ping", timeout=2)
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("basalt did not start; see " + str(self.dir / "stderr.log"))

    def index_gauges(self, kb):
        """(chunks, graph in use) of a knowledge base's index, from /metrics."""
        text = urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()
        got = [re.search(rf'^{name}{{knowledge_base="{kb}"}} (\S+)$', text, flags=re.M)
               for name in ("basalt_knowledge_index_chunks", "basalt_knowledge_index_graph")]
        return tuple(float(m.group(1)) if m else None for m in got)

    def wait_graph(self, kb, limit=900):
        """Seconds until the knowledge base's HNSW graph answers searches."""
        t0 = time.monotonic()
        while self.index_gauges(kb)[1] != 1:
            if time.monotonic() - t0 > limit:
                raise SystemExit(f"no HNSW graph after {limit} s; see {self.dir / 'stderr.log'}")
            time.sleep(0.1)
        return time.monotonic() - t0

    def client(self, service):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="x", aws_secret_access_key="x",
                            config=botocore.config.Config(read_timeout=3600, retries={"total_max_attempts": 1}))

    def halt(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)

    def stop(self):
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


def kb_with_source(agent, name, source, chunking=None):
    kb = agent.create_knowledge_base(name=name, roleArn=ROLE, knowledgeBaseConfiguration={
        "type": "VECTOR", "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED}})["knowledgeBase"]["knowledgeBaseId"]
    extra = {"vectorIngestionConfiguration": {"chunkingConfiguration": chunking}} if chunking else {}
    ds = agent.create_data_source(knowledgeBaseId=kb, name="src", dataSourceConfiguration=source, **extra)["dataSource"]["dataSourceId"]
    return kb, ds


def wait_job(agent, kb, ds, job):
    while True:
        j = agent.get_ingestion_job(knowledgeBaseId=kb, dataSourceId=ds, ingestionJobId=job)["ingestionJob"]
        if j["status"] in ("COMPLETE", "FAILED"):
            return j
        time.sleep(1)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def doc_ranking(resp, ids: dict[str, str]) -> list[str]:
    """Document ids (by file stem in `ids`) in a Retrieve answer's order; a
    document's first chunk counts, later ones are skipped."""
    ranking = []
    for r in resp["retrievalResults"]:
        d = ids[r["location"]["s3Location"]["uri"].rsplit("/", 1)[1].removesuffix(".txt")]
        if d not in ranking:
            ranking.append(d)
    return ranking


def quality(args, out):
    import bm25s

    coll = load_collection(Path(args.collection))
    docs, queries, rel = coll.docs, coll.queries, coll.rel
    root = Path(tempfile.mkdtemp(prefix="collection-"))
    # Files named by position: a collection's ids need not be valid file names.
    stems = {}
    for n, (doc_id, text) in enumerate(docs.items()):
        stems[f"d{n:07d}"] = doc_id
        (root / f"d{n:07d}.txt").write_text(text)
    srv = Server(args.bin, args.embed_model, args.threads, {"collection": root}, args.rerank_model,
                 encoder_kernel=not args.llama_only)
    try:
        agent, rt = srv.client("bedrock-agent"), srv.client("bedrock-agent-runtime")
        kb, ds = kb_with_source(agent, "quality", {"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::collection"}})
        t0 = time.monotonic()
        job = agent.start_ingestion_job(knowledgeBaseId=kb, dataSourceId=ds)["ingestionJob"]["ingestionJobId"]
        job = wait_job(agent, kb, ds, job)
        ingest_s = time.monotonic() - t0
        assert job["status"] == "COMPLETE", job
        results = {}
        latencies = {}
        hybrid = {}
        for search in ("SEMANTIC", "HYBRID"):
            per_query, lat = [], []
            for qid, text in queries.items():
                t = time.perf_counter()
                resp = rt.retrieve(knowledgeBaseId=kb, retrievalQuery={"text": text},
                                   retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 100, "overrideSearchType": search}})
                lat.append((time.perf_counter() - t) * 1000)
                ranking = doc_ranking(resp, stems)
                per_query.append(metrics(ranking, rel[qid]))
                if search == "HYBRID":
                    hybrid[qid] = ranking
            results[search] = per_query
            latencies[search] = lat
        if args.rerank_model:
            # Rerank HYBRID's top N through Retrieve's rerankingConfiguration;
            # the rest of the top 100 keeps HYBRID's order.
            name = f"HYBRID + rerank top {args.rerank_top} (Gemma 3 270M)"
            per_query, lat = [], []
            for qid, text in queries.items():
                t = time.perf_counter()
                resp = rt.retrieve(knowledgeBaseId=kb, retrievalQuery={"text": text}, retrievalConfiguration={
                    "vectorSearchConfiguration": {"numberOfResults": args.rerank_top, "overrideSearchType": "HYBRID",
                        "rerankingConfiguration": {"type": "BEDROCK_RERANKING_MODEL", "bedrockRerankingConfiguration": {
                            "modelConfiguration": {"modelArn": "reranker"}}}}})
                lat.append((time.perf_counter() - t) * 1000)
                ranking = doc_ranking(resp, stems)
                ranking += [d for d in hybrid[qid] if d not in ranking]
                per_query.append(metrics(ranking, rel[qid]))
            results[name] = per_query
            latencies[name] = lat
        # The peer: bm25s over the same documents and queries, whole documents.
        ids = list(docs)
        t = time.perf_counter()
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize([docs[i] for i in ids], stopwords="en", show_progress=False), show_progress=False)
        peer_index_s = time.perf_counter() - t
        per_query, lat = [], []
        for qid, text in queries.items():
            t = time.perf_counter()
            hits, _ = retriever.retrieve(bm25s.tokenize([text], stopwords="en", show_progress=False), k=100, show_progress=False)
            lat.append((time.perf_counter() - t) * 1000)
            per_query.append(metrics([ids[i] for i in hits[0]], rel[qid]))
        results["bm25s (peer)"] = per_query
        latencies["bm25s (peer)"] = lat
        stats = job["statistics"]
        out.append(f"{coll.name}: {len(docs)} documents, {len(queries)} judged queries; ingested through an S3 data source "
                   f"(default chunking) in {ingest_s:.1f} s ({stats['numberOfNewDocumentsIndexed']} documents indexed, "
                   f"{stats['numberOfDocumentsFailed']} failed); bm25s indexed in {peer_index_s * 1000:.0f} ms.\n")
        out.append("| method | nDCG@10 | recall@10 | MAP (top 100) |\n|---|---|---|---|")
        for name, per_query in results.items():
            out.append(summarize(name, per_query))
        out.append(f"\n| method | p50 ms | p95 ms (client-side, {len(queries)} queries, numberOfResults 100) |\n|---|---|---|")
        for name, lat in latencies.items():
            out.append(f"| {name} | {statistics.median(lat):.1f} | {pct(lat, 95):.1f} |")
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


def never_asked(texts):
    """The texts, then (for a small collection) the texts again with a
    counter appended, so no query is ever asked twice."""
    round_ = 0
    while True:
        for t in texts:
            yield t if round_ == 0 else f"{t} ({round_})"
        round_ += 1


def scale(args, out):
    """Chunks are 16-word windows of the collection's documents (real text, so
    BM25 sees real term statistics), repeated at different offsets to reach
    each size. Queries are its document titles (or first words), each used at
    most once per server, so every "new" query is embedded; then the same ones
    are asked again,
    when basalt's query cache skips the embedder, which times the search
    itself (plus HTTP and boto3); then again with a plain keep-alive HTTP
    client ("raw"), which leaves out boto3's own few milliseconds a call; then
    as many more new titles with that client ("raw new"). --queries sets how
    many (200 by default: a p95 of 50 calls is their third-slowest)."""
    coll = load_collection(Path(args.collection))
    texts = [d.split() for d in coll.docs.values() if len(d.split()) >= 20]
    fresh = never_asked(coll.short_texts())
    srv = Server(args.bin, args.embed_model, args.threads, {"unused-bucket": "/nonexistent"},
                 hnsw_from_chunks=args.hnsw_from_chunks, encoder_kernel=not args.llama_only)
    try:
        agent, rt = srv.client("bedrock-agent"), srv.client("bedrock-agent-runtime")
        out.append(f"\nLatency in ms, client-side, {args.queries} Retrieves each (numberOfResults 10); *new* = a title "
                   "never asked before (embedded), *again* = the same titles asked a second time (query embedding cached), "
                   "*raw* = the same again from a plain HTTP client instead of boto3, "
                   "*raw new* = as many more never-seen titles from the plain HTTP client.\n")
        out.append("| chunks | ingest chunks/s | HYBRID new p50 | HYBRID new p95 | HYBRID again p50 | HYBRID again p95 "
                   "| HYBRID raw p50 | HYBRID raw p95 | HYBRID raw new p50 | HYBRID raw new p95 "
                   "| SEMANTIC new p50 | SEMANTIC new p95 | SEMANTIC again p50 | SEMANTIC again p95 "
                   "| SEMANTIC raw p50 | SEMANTIC raw p95 | SEMANTIC raw new p50 | SEMANTIC raw new p95 |\n"
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        kb, ds = kb_with_source(agent, "scale", {"type": "CUSTOM"}, {"chunkingStrategy": "NONE"})
        have = prev = 0
        notes = []
        for target in [int(s) for s in args.scales.split(",")]:
            t0 = time.monotonic()
            while have < target:
                batch = []
                for i in range(have, min(target, have + 10)):
                    words = texts[i % len(texts)]
                    start = (i // len(texts) * 7) % (len(words) - 16)
                    batch.append({"content": {"dataSourceType": "CUSTOM", "custom": {
                        "customDocumentIdentifier": {"id": f"d{i}"}, "sourceType": "IN_LINE",
                        "inlineContent": {"type": "TEXT", "textContent": {"data": " ".join(words[start:start + 16])}}}},
                        "metadata": {"type": "IN_LINE_ATTRIBUTE", "inlineAttributes": [
                            {"key": "shard", "value": {"type": "NUMBER", "numberValue": i % 10}}]}})
                agent.ingest_knowledge_base_documents(knowledgeBaseId=kb, dataSourceId=ds, documents=batch)
                have += len(batch)
            ingest_rate = (target - prev) / (time.monotonic() - t0)
            prev = target
            row = [f"| {target:,}", f"{ingest_rate:.1f}"]
            if target >= args.hnsw_from_chunks:
                # The HNSW graph builds in the background (about a minute per
                # 100k chunks) while searches scan; it is timed below.
                notes.append(f"HNSW graph at {target:,} chunks in use {srv.wait_graph(kb):.1f} s after the last write.")
            raw = http.client.HTTPConnection("127.0.0.1", srv.port)
            for search in ("HYBRID", "SEMANTIC"):
                config = {"vectorSearchConfiguration": {"numberOfResults": 10, "overrideSearchType": search}}
                def ask(text):
                    t = time.perf_counter()
                    rt.retrieve(knowledgeBaseId=kb, retrievalQuery={"text": text}, retrievalConfiguration=config)
                    return (time.perf_counter() - t) * 1000
                def ask_raw(text):
                    body = json.dumps({"retrievalQuery": {"text": text}, "retrievalConfiguration": config})
                    t = time.perf_counter()
                    raw.request("POST", f"/knowledgebases/{kb}/retrieve", body, {"content-type": "application/json"})
                    resp = raw.getresponse()
                    resp.read()
                    assert resp.status == 200, resp.status
                    return (time.perf_counter() - t) * 1000
                for _ in range(10):  # the first queries load the index
                    ask(next(fresh))
                asked = [next(fresh) for _ in range(args.queries)]
                new = [ask(t) for t in asked]
                again = [ask(t) for t in asked]
                plain = [ask_raw(t) for t in asked]
                plain_new = [ask_raw(next(fresh)) for _ in range(args.queries)]
                for lat in (new, again, plain, plain_new):
                    row += [f"{statistics.median(lat):.1f}", f"{pct(lat, 95):.1f}"]
            out.append(" | ".join(row) + " |")
        notes.append(busy_queries(srv, kb, texts, fresh))
        if srv.index_gauges(kb)[1] == 1:
            # A restart reads the saved graph back instead of building it.
            have = int(srv.index_gauges(kb)[0])
            srv.halt()
            t0 = time.monotonic()
            srv.start()
            started = time.monotonic() - t0
            while srv.index_gauges(kb)[0] != have:
                time.sleep(0.05)
            loaded = time.monotonic() - t0
            graph = srv.wait_graph(kb) + loaded
            notes.append(f"Restart at {have:,} chunks: serving after {started:.1f} s, index loaded after "
                         f"{loaded:.1f} s, HNSW graph in use after {graph:.1f} s.")
        out += [""] + notes
    finally:
        srv.stop()


def busy_queries(srv, kb, texts, fresh):
    """New HYBRID queries while long documents are ingested, one per call into
    a FIXED_SIZE data source (254 tokens, the most the embedding model's
    256-token window takes, so each chunk fills a 256-token pass): the
    embedder takes a query between two passes of the documents' chunks, so a
    query waits for the pass under way, not for the document."""
    agent, rt = srv.client("bedrock-agent"), srv.client("bedrock-agent-runtime")
    ds = agent.create_data_source(
        knowledgeBaseId=kb, name="long", dataSourceConfiguration={"type": "CUSTOM"},
        vectorIngestionConfiguration={"chunkingConfiguration": {
            "chunkingStrategy": "FIXED_SIZE",
            "fixedSizeChunkingConfiguration": {"maxTokens": 254, "overlapPercentage": 20}}},
    )["dataSource"]["dataSourceId"]
    words = [w for t in texts for w in t]
    stop, fed = threading.Event(), [0]

    def feed():
        writer = srv.client("bedrock-agent")
        while not stop.is_set():
            start = (fed[0] * 3000) % max(1, len(words) - 3000)
            writer.ingest_knowledge_base_documents(knowledgeBaseId=kb, dataSourceId=ds, documents=[{
                "content": {"dataSourceType": "CUSTOM", "custom": {
                    "customDocumentIdentifier": {"id": f"long{fed[0]}"}, "sourceType": "IN_LINE",
                    "inlineContent": {"type": "TEXT", "textContent": {"data": " ".join(words[start:start + 3000])}}}}}])
            fed[0] += 1

    config = {"vectorSearchConfiguration": {"numberOfResults": 10, "overrideSearchType": "HYBRID"}}
    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(2)
    lat = []
    t0 = time.monotonic()
    for _ in range(50):
        t = time.perf_counter()
        rt.retrieve(knowledgeBaseId=kb, retrievalQuery={"text": next(fresh)}, retrievalConfiguration=config)
        lat.append((time.perf_counter() - t) * 1000)
    took = time.monotonic() - t0
    stop.set()
    feeder.join()
    return (f"New HYBRID queries while 3,000-word documents are ingested one per call (FIXED_SIZE, "
            f"254 tokens): p50 {statistics.median(lat):.1f} / p95 {pct(lat, 95):.1f} / max {max(lat):.1f} ms "
            f"(50 queries in {took:.1f} s; {fed[0]} documents ingested from 2 s before the first to the last).")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--embed-model", required=True)
    p.add_argument("--collection", "--cisi", required=True,
                   help="a test collection directory: SMART/Glasgow (*.ALL, *.QRY, *.REL) or BEIR (corpus.jsonl, ...)")
    p.add_argument("--scales", default="1000,10000")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rerank-model", help="GGUF of a text model: adds HYBRID + rerank to the quality run")
    p.add_argument("--rerank-top", type=int, default=20)
    p.add_argument("--skip-quality", "--skip-cisi", action="store_true")
    p.add_argument("--queries", type=int, default=200, help="timed Retrieves per latency column")
    p.add_argument("--llama-only", action="store_true",
                   help="encoder_kernel = false: llama.cpp embeds every pass (an A/B for basalt's own encoder)")
    p.add_argument("--hnsw-from-chunks", type=int, default=50_000,
                   help="the server's knowledge.hnsw_from_chunks (scales from it on time the graph and a restart)")
    args = p.parse_args()
    out = [f"machine: {platform.machine()}, {os.cpu_count()} vCPUs, {platform.platform()}; embedding threads {args.threads}\n"]
    if not args.skip_quality:
        quality(args, out)
    if args.scales:
        scale(args, out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
