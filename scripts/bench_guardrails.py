"""Guardrail benchmarks; run through scripts/bench-guardrails (see there).

Everything basalt does here goes through its public API (ApplyGuardrail with
boto3), like a user's calls. Presidio runs in-process on the same texts in the
same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench" / "guardrails"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_kb import Server, pct  # noqa: E402
import pii_data  # noqa: E402

PII_TYPES = [
    "ADDRESS", "AGE", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "CA_HEALTH_NUMBER",
    "CA_SOCIAL_INSURANCE_NUMBER", "CREDIT_DEBIT_CARD_CVV", "CREDIT_DEBIT_CARD_EXPIRY",
    "CREDIT_DEBIT_CARD_NUMBER", "DRIVER_ID", "EMAIL", "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "IP_ADDRESS", "LICENSE_PLATE", "MAC_ADDRESS", "NAME", "PASSWORD", "PHONE", "PIN",
    "SWIFT_CODE", "UK_NATIONAL_HEALTH_SERVICE_NUMBER", "UK_NATIONAL_INSURANCE_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "URL", "USERNAME", "US_BANK_ACCOUNT_NUMBER",
    "US_BANK_ROUTING_NUMBER", "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", "US_PASSPORT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER", "VEHICLE_IDENTIFICATION_NUMBER",
]
CATEGORIES = ["HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT", "PROMPT_ATTACK"]
LEVELS = ["NONE", "LOW", "MEDIUM", "HIGH"]


def create(control, name, **policy):
    g = control.create_guardrail(name=name, blockedInputMessaging="blocked",
                                 blockedOutputsMessaging="blocked", **policy)
    return g["guardrailId"]


def apply(runtime, gid, text, scope="INTERVENTIONS"):
    return runtime.apply_guardrail(guardrailIdentifier=gid, guardrailVersion="DRAFT", source="INPUT",
                                   content=[{"text": {"text": text}}], outputScope=scope)


def spans(text, found):
    """(type, start, end) for each found (type, match) pair, located in text."""
    out, taken = [], defaultdict(int)
    for kind, match in found:
        at = text.find(match, taken[match])
        if at < 0:
            at = text.find(match)
        if at >= 0:
            taken[match] = at + 1
            out.append((kind, at, at + len(match)))
    return out


def overlaps(a, b):
    return a[1] < b[2] and b[1] < a[2]


def score(items, predictions):
    """Per type: true positives, false negatives, false positives (same type,
    overlapping span counts as found)."""
    tp, fn, fp = defaultdict(int), defaultdict(int), defaultdict(int)
    for item, pred in zip(items, predictions):
        truth = [(e["type"], e["start"], e["end"]) for e in item["entities"]]
        for t in truth:
            if any(p[0] == t[0] and overlaps(p, t) for p in pred):
                tp[t[0]] += 1
            else:
                fn[t[0]] += 1
        for p in pred:
            if not any(p[0] == t[0] and overlaps(p, t) for t in truth):
                fp[p[0]] += 1
    return tp, fn, fp


def ratio(a, b):
    return a / b if b else float("nan")


def bench_pii(srv, out, title, items, per_type):
    from presidio_peer import Presidio

    control, runtime = srv.client("bedrock"), srv.client("bedrock-runtime")
    gid = create(control, f"pii-{title.split()[0].lower()}", sensitiveInformationPolicyConfig={
        "piiEntitiesConfig": [{"type": t, "action": "NONE"} for t in PII_TYPES]})
    import presidio_analyzer

    # The fairer peer: Presidio's default English recognizers plus the five it
    # ships switched off (ABA routing, UK NINO, Canadian SIN, UK plates, UK
    # driving licences).
    presidio = Presidio(extended=True)
    version = getattr(presidio_analyzer, "__version__", None) or __import__("importlib.metadata").metadata.version("presidio-analyzer")
    basalt_pred, presidio_pred, basalt_ms, presidio_ms = [], [], [], []
    # Latency over plain keep-alive HTTP (boto3's own overhead is ~2 ms a call
    # here and would say more about boto3 than about either detector).
    conn = http.client.HTTPConnection("127.0.0.1", srv.port)
    path = f"/guardrail/{gid}/version/DRAFT/apply"
    for item in items:
        text = item["text"]
        body = json.dumps({"source": "INPUT", "content": [{"text": {"text": text}}]})
        t = time.perf_counter()
        conn.request("POST", path, body, {"content-type": "application/json"})
        r = json.loads(conn.getresponse().read())
        basalt_ms.append((time.perf_counter() - t) * 1000)
        found = [(p["type"], p["match"]) for a in r["assessments"]
                 for p in a.get("sensitiveInformationPolicy", {}).get("piiEntities", [])]
        basalt_pred.append(spans(text, found))
        t = time.perf_counter()
        pres = presidio.analyze(text)
        presidio_ms.append((time.perf_counter() - t) * 1000)
        presidio_pred.append([(p["type"], p["start"], p["end"]) for p in pres])
    covered = presidio.covered()
    b = score(items, basalt_pred)
    p = score(items, presidio_pred)
    out.append(f"PII, {title}: {len(items)} texts ({per_type} per type + {len(items) - per_type * len(PII_TYPES)} without PII); "
               f"Presidio {version} with its no-op NLP engine "
               f"(pattern recognizers, default and off-by-default English ones, score threshold 0). A detection counts when "
               f"its type matches and its span overlaps the labelled one.\n")
    out.append("| type | basalt recall | basalt precision | Presidio recall | Presidio precision |")
    out.append("|---|---|---|---|---|")
    wins = losses = 0
    for t in PII_TYPES:
        br = ratio(b[0][t], b[0][t] + b[1][t])
        bp = ratio(b[0][t], b[0][t] + b[2][t])
        if t in covered:
            pr = ratio(p[0][t], p[0][t] + p[1][t])
            pp = ratio(p[0][t], p[0][t] + p[2][t])
            pres = f"{pr:.2f} | {pp:.2f}"
            wins += br >= pr
            losses += br < pr
        else:
            pres = "— | —"
        out.append(f"| {t} | {br:.2f} | {bp:.2f} | {pres} |")
    tb = sum(b[0].values()), sum(b[1].values()), sum(b[2].values())
    out.append(f"| **all** | {ratio(tb[0], tb[0] + tb[1]):.3f} | {ratio(tb[0], tb[0] + tb[2]):.3f} | | |")
    cov = [t for t in PII_TYPES if t in covered]
    pb = [sum(b[0][t] for t in cov), sum(b[1][t] for t in cov), sum(b[2][t] for t in cov)]
    pp_ = [sum(p[0][t] for t in cov), sum(p[1][t] for t in cov), sum(p[2][t] for t in cov)]
    out.append(f"| **types both cover ({len(cov)})** | {ratio(pb[0], pb[0] + pb[1]):.3f} | {ratio(pb[0], pb[0] + pb[2]):.3f} "
               f"| {ratio(pp_[0], pp_[0] + pp_[1]):.3f} | {ratio(pp_[0], pp_[0] + pp_[2]):.3f} |")
    out.append(f"\nRecall ≥ Presidio's on {wins} of {len(cov)} types both cover ({losses} below).")
    out.append(f"Latency per text: basalt ApplyGuardrail over keep-alive HTTP (all 31 types, JSON both ways) p50 {pct(basalt_ms, 50):.2f} ms, "
               f"p99 {pct(basalt_ms, 99):.2f} ms; Presidio in-process analyze p50 {pct(presidio_ms, 50):.2f} ms, "
               f"p99 {pct(presidio_ms, 99):.2f} ms.\n")


def bench_content(srv, out, data):
    control, runtime = srv.client("bedrock"), srv.client("bedrock-runtime")
    gid = create(control, "content-bench", contentPolicyConfig={"filtersConfig": [
        {"type": c, "inputStrength": "HIGH", "outputStrength": "NONE" if c == "PROMPT_ATTACK" else "HIGH"}
        for c in CATEGORIES]})
    rows = [line.split("\t", 1) for line in Path(data).read_text().splitlines() if "\t" in line]
    conf = []
    for label, text in rows:
        r = apply(runtime, gid, text, scope="FULL")
        levels = {f["type"]: f["confidence"] for a in r["assessments"]
                  for f in a.get("contentPolicy", {}).get("filters", [])}
        conf.append((label, levels))
    out.append(f"Content filters: {len(rows)} labelled sentences (`bench/guardrails/content_eval.tsv`, "
               f"written for basalt, none of them in the training examples; "
               f"{sum(1 for l, _ in rows if l == 'NEUTRAL')} benign). A text counts as detected for a "
               "category when a filter of that strength would block it (HIGH strength blocks LOW confidence "
               "and up; MEDIUM blocks MEDIUM and up; LOW blocks HIGH only).\n")
    out.append("| category | strength HIGH P / R | MEDIUM P / R | LOW P / R | benign texts blocked at HIGH |")
    out.append("|---|---|---|---|---|")
    for c in CATEGORIES:
        cells = []
        for strength, floor in [("HIGH", "LOW"), ("MEDIUM", "MEDIUM"), ("LOW", "HIGH")]:
            hit = [LEVELS.index(lv.get(c, "NONE")) >= LEVELS.index(floor) for _, lv in conf]
            tp = sum(1 for (l, _), h in zip(conf, hit) if h and l == c)
            fp = sum(1 for (l, _), h in zip(conf, hit) if h and l != c)
            pos = sum(1 for l, _ in conf if l == c)
            cells.append(f"{ratio(tp, tp + fp):.2f} / {ratio(tp, pos):.2f}")
        benign = sum(1 for l, lv in conf if l == "NEUTRAL" and LEVELS.index(lv.get(c, "NONE")) >= 1)
        out.append(f"| {c} | {' | '.join(cells)} | {benign} |")
    out.append("")


def bench_topics(srv, out, data):
    control, runtime = srv.client("bedrock"), srv.client("bedrock-runtime")
    spec = json.loads(Path(data).read_text())
    gid = create(control, "topic-bench", topicPolicyConfig={"topicsConfig": [
        dict(t, type="DENY") for t in spec["topics"]]})
    res = []
    for q in spec["queries"]:
        r = apply(runtime, gid, q["text"], scope="FULL")
        hit = {t["name"] for a in r["assessments"] for t in a.get("topicPolicy", {}).get("topics", []) if t["detected"]}
        res.append((q["topic"], hit))
    out.append(f"Denied topics: {len(spec['topics'])} topics (definition + 3 examples each), {len(res)} queries "
               f"(`bench/guardrails/topics_eval.json`: 10 on each topic, {sum(1 for t, _ in res if t is None)} on none).\n")
    out.append("| topic | precision | recall |")
    out.append("|---|---|---|")
    for t in spec["topics"]:
        name = t["name"]
        tp = sum(1 for want, hit in res if name in hit and want == name)
        fp = sum(1 for want, hit in res if name in hit and want != name)
        pos = sum(1 for want, _ in res if want == name)
        out.append(f"| {name} | {ratio(tp, tp + fp):.2f} | {ratio(tp, pos):.2f} |")
    benign_hit = sum(1 for want, hit in res if want is None and hit)
    out.append(f"\nOff-topic queries that hit a topic: {benign_hit} of {sum(1 for t, _ in res if t is None)}.\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--embed-model", required=True)
    ap.add_argument("--per-type", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    out = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}.\n"]
    srv = Server(args.bin, args.embed_model, args.threads, {})
    try:
        import pii_heldout

        bench_pii(srv, out, "tuned set (bench/guardrails/pii_data.py, seed 7)",
                  pii_data.generate(seed=7, per_type=args.per_type) + pii_data.negatives(seed=7, n=100), args.per_type)
        bench_pii(srv, out, "held-out set (bench/guardrails/pii_heldout.py, seed 1234; written independently of "
                  "the detectors, whose misses on it were then fixed: see BENCHMARKS.md)", pii_heldout.generate(seed=1234, per_type=15) + pii_heldout.negatives(seed=1234, n=80), 15)
        bench_content(srv, out, ROOT / "bench" / "guardrails" / "content_eval.tsv")
        bench_topics(srv, out, ROOT / "bench" / "guardrails" / "topics_eval.json")
    finally:
        srv.stop()
    print("\n".join(out))


if __name__ == "__main__":
    main()
