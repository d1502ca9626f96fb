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
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.config

EMBED = "sentence-transformers.all-minilm-l6-v2"
ROLE = "arn:aws:iam::000000000000:role/bench"


def parse_cisi(d: Path):
    docs, queries, rel = {}, {}, {}
    for rec in re.split(r"^\.I ", (d / "CISI.ALL").read_text(errors="replace"), flags=re.M)[1:]:
        doc_id, _, body = rec.partition("\n")
        fields = dict(re.findall(r"^\.([TAWX])\n(.*?)(?=^\.[TAWXI] ?|\Z)", body, flags=re.M | re.S))
        docs[doc_id.strip()] = " ".join(f"{fields.get(k, '').strip()}" for k in "TW").strip()
    for rec in re.split(r"^\.I ", (d / "CISI.QRY").read_text(errors="replace"), flags=re.M)[1:]:
        qid, _, body = rec.partition("\n")
        m = re.search(r"^\.W\n(.*?)(?=^\.[TAWBI] ?|\Z)", body, flags=re.M | re.S)
        queries[qid.strip()] = " ".join((m.group(1) if m else body).split())
    for line in (d / "CISI.REL").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            rel.setdefault(parts[0], set()).add(parts[1])
    return docs, {q: t for q, t in queries.items() if q in rel}, rel


def metrics(ranking: list[str], relevant: set[str]):
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranking[:10]) if d in relevant)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    recall = len(set(ranking[:10]) & relevant) / len(relevant)
    hits, ap = 0, 0.0
    for i, d in enumerate(ranking):
        if d in relevant:
            hits += 1
            ap += hits / (i + 1)
    return dcg / idcg, recall, ap / len(relevant)


def summarize(name, per_query):
    n = len(per_query)
    nd, rc, mp = (sum(x[i] for x in per_query) / n for i in range(3))
    return f"| {name} | {nd:.4f} | {rc:.4f} | {mp:.4f} |"


class Server:
    def __init__(self, binary, embed_model, threads, buckets, rerank_model=None, hnsw_from_chunks=50_000):
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
batch_tokens = 512
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


def doc_ranking(resp) -> list[str]:
    """CISI document ids in a Retrieve answer's order; a document's first
    chunk counts, later ones are skipped."""
    ranking = []
    for r in resp["retrievalResults"]:
        d = r["location"]["s3Location"]["uri"].rsplit("/", 1)[1].removesuffix(".txt")
        if d not in ranking:
            ranking.append(d)
    return ranking


def cisi(args, out):
    import bm25s

    docs, queries, rel = parse_cisi(Path(args.cisi))
    root = Path(tempfile.mkdtemp(prefix="cisi-"))
    for doc_id, text in docs.items():
        (root / f"{doc_id}.txt").write_text(text)
    srv = Server(args.bin, args.embed_model, args.threads, {"cisi": root}, args.rerank_model)
    try:
        agent, rt = srv.client("bedrock-agent"), srv.client("bedrock-agent-runtime")
        kb, ds = kb_with_source(agent, "cisi", {"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::cisi"}})
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
                ranking = doc_ranking(resp)
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
                ranking = doc_ranking(resp)
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
        out.append(f"CISI: {len(docs)} documents, {len(queries)} judged queries; ingested through an S3 data source "
                   f"(default chunking) in {ingest_s:.1f} s ({stats['numberOfNewDocumentsIndexed']} documents indexed, "
                   f"{stats['numberOfDocumentsFailed']} failed); bm25s indexed in {peer_index_s * 1000:.0f} ms.\n")
        out.append("| method | nDCG@10 | recall@10 | MAP (top 100) |\n|---|---|---|---|")
        for name, per_query in results.items():
            out.append(summarize(name, per_query))
        out.append("\n| method | p50 ms | p95 ms (client-side, 76 queries, numberOfResults 100) |\n|---|---|---|")
        for name, lat in latencies.items():
            out.append(f"| {name} | {statistics.median(lat):.1f} | {pct(lat, 95):.1f} |")
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


def scale(args, out):
    """Chunks are 16-word windows of CISI abstracts (real English, so BM25 sees
    real term statistics), repeated at different offsets to reach each size.
    Queries are CISI document titles, each used at most once per server, so
    every "new" query is embedded; then the same 50 titles are asked again,
    when basalt's query cache skips the embedder, which times the search
    itself (plus HTTP and boto3); then again with a plain keep-alive HTTP
    client ("raw"), which leaves out boto3's own few milliseconds a call."""
    docs, _, _ = parse_cisi(Path(args.cisi))
    texts = [d.split() for d in docs.values() if len(d.split()) >= 20]
    titles = []
    for rec in re.split(r"^\.I ", (Path(args.cisi) / "CISI.ALL").read_text(errors="replace"), flags=re.M)[1:]:
        m = re.search(r"^\.T\n(.*?)(?=^\.[AWXBI] ?)", rec, flags=re.M | re.S)
        if m and " ".join(m.group(1).split()) not in titles:
            titles.append(" ".join(m.group(1).split()))
    fresh = iter(titles)
    srv = Server(args.bin, args.embed_model, args.threads, {"unused-bucket": "/nonexistent"},
                 hnsw_from_chunks=args.hnsw_from_chunks)
    try:
        agent, rt = srv.client("bedrock-agent"), srv.client("bedrock-agent-runtime")
        out.append("\nLatency in ms, client-side, 50 Retrieves each (numberOfResults 10); *new* = a title never asked "
                   "before (embedded), *again* = the same 50 titles asked a second time (query embedding cached), "
                   "*raw* = the same again from a plain HTTP client instead of boto3.\n")
        out.append("| chunks | ingest chunks/s | HYBRID new p50 | HYBRID new p95 | HYBRID again p50 | HYBRID again p95 "
                   "| HYBRID raw p50 | HYBRID raw p95 "
                   "| SEMANTIC new p50 | SEMANTIC new p95 | SEMANTIC again p50 | SEMANTIC again p95 "
                   "| SEMANTIC raw p50 | SEMANTIC raw p95 |\n"
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
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
                asked = [next(fresh) for _ in range(50)]
                new = [ask(t) for t in asked]
                again = [ask(t) for t in asked]
                plain = [ask_raw(t) for t in asked]
                for lat in (new, again, plain):
                    row += [f"{statistics.median(lat):.1f}", f"{pct(lat, 95):.1f}"]
            out.append(" | ".join(row) + " |")
        if srv.index_gauges(kb)[1] == 1:
            # A restart reads the saved graph back instead of building it.
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--embed-model", required=True)
    p.add_argument("--cisi", required=True)
    p.add_argument("--scales", default="1000,10000")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rerank-model", help="GGUF of a text model: adds HYBRID + rerank to the CISI run")
    p.add_argument("--rerank-top", type=int, default=20)
    p.add_argument("--skip-cisi", action="store_true")
    p.add_argument("--hnsw-from-chunks", type=int, default=50_000,
                   help="the server's knowledge.hnsw_from_chunks (scales from it on time the graph and a restart)")
    args = p.parse_args()
    out = [f"machine: {platform.machine()}, {os.cpu_count()} vCPUs, {platform.platform()}; embedding threads {args.threads}\n"]
    if not args.skip_cisi:
        cisi(args, out)
    if args.scales:
        scale(args, out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
