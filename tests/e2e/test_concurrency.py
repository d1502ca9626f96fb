"""Concurrency and lifecycle: many simultaneous streams, cancellation when a
client disconnects (checked through /metrics), and load shedding with
ThrottlingException when the queue is full."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

import support
from support import MODEL_ID, assert_healthy, collect_converse_stream, user

N_STREAMS = 16
STREAM_MAX_TOKENS = 24


def _stream_once(url: str, prompt: str, max_tokens: int, barrier: threading.Barrier | None = None):
    client = support.boto_client("bedrock-runtime", url)
    if barrier is not None:
        barrier.wait(timeout=60)
    resp = client.converse_stream(
        modelId=MODEL_ID,
        messages=[user(prompt)],
        inferenceConfig={"maxTokens": max_tokens, "temperature": 0.0},
    )
    return collect_converse_stream(resp)


def test_many_concurrent_streams(server, runtime):
    prompts = [f"Story number {i}: once upon a time there was a" for i in range(N_STREAMS)]
    expected_input = [
        runtime.count_tokens(modelId=MODEL_ID, input={"converse": {"messages": [user(p)]}})[
            "inputTokens"
        ]
        for p in prompts
    ]
    barrier = threading.Barrier(N_STREAMS)
    with ThreadPoolExecutor(max_workers=N_STREAMS) as pool:
        futures = [
            pool.submit(_stream_once, server.url, p, STREAM_MAX_TOKENS, barrier) for p in prompts
        ]
        results = [f.result(timeout=300) for f in futures]

    for i, events in enumerate(results):
        names = [name for name, _ in events]
        assert names[0] == "messageStart", (i, names)
        assert names[-1] == "metadata", (i, names)
        assert "messageStop" in names, (i, names)
        usage = events[-1][1]["usage"]
        assert 0 < usage["outputTokens"] <= STREAM_MAX_TOKENS, (i, usage)
        assert usage["inputTokens"] == expected_input[i], (i, usage)
        assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def _cancelled_count(url: str) -> float:
    value = support.metric_sum(
        support.get_metrics(url),
        "basalt_requests_total",
        api="ConverseStream",
        model=MODEL_ID,
        status="cancelled",
    )
    return value or 0.0


def test_client_disconnect_cancels_generation(server, runtime):
    before = _cancelled_count(server.url)
    body = json.dumps(
        {
            "messages": [user("Count from 1 to 1000: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,")],
            "inferenceConfig": {"maxTokens": 2000, "temperature": 0.0},
        }
    ).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request(
        "POST",
        f"/model/{MODEL_ID}/converse-stream",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    sock = conn.sock  # keep it: http.client may hand the socket to the response
    resp = conn.getresponse()
    try:
        assert resp.status == 200, resp.read()
        frames = support.read_event_frames(resp, 3)
        assert len(frames) >= 3, frames
        assert frames[0][":event-type"] == "messageStart"
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        resp.close()
        conn.close()

    deadline = time.monotonic() + 20
    active = cancelled = None
    while time.monotonic() < deadline:
        text = support.get_metrics(server.url)
        active = support.metric_sum(text, "basalt_active_sequences", model=MODEL_ID)
        cancelled = support.metric_sum(
            text, "basalt_requests_total", api="ConverseStream", model=MODEL_ID, status="cancelled"
        )
        if active == 0 and cancelled is not None and cancelled >= before + 1:
            break
        time.sleep(0.25)
    assert active == 0, f"basalt_active_sequences is {active} 20 s after the disconnect"
    assert cancelled is not None and cancelled >= before + 1, (
        f"basalt_requests_total{{status=cancelled}} went from {before} to {cancelled}"
    )
    assert_healthy(runtime)


def test_metrics_exposition(server, runtime):
    # Same prompt twice so the prefix cache has a chance to be used.
    support.converse(runtime, "The quick brown fox", max_tokens=4)
    support.converse(runtime, "The quick brown fox", max_tokens=4)
    text = support.get_metrics(server.url)
    for name in (
        "basalt_prefix_cache_hits_total",
        "basalt_queue_depth",
        "basalt_time_to_first_token_seconds_bucket",
        "basalt_request_duration_seconds_bucket",
        "basalt_input_tokens_total",
        "basalt_output_tokens_total",
        "basalt_active_sequences",
        "basalt_requests_total",
    ):
        assert name in text, f"{name} missing from /metrics"
    input_tokens = support.metric_sum(text, "basalt_input_tokens_total")
    output_tokens = support.metric_sum(text, "basalt_output_tokens_total")
    assert input_tokens and input_tokens > 0
    assert output_tokens and output_tokens > 0


# ---------------------------------------------------------------- throttling


@pytest.fixture(scope="module")
def tiny_server(start_server):
    """One sequence at a time and a queue of one: the third caller is shed."""
    srv = start_server("basalt-throttle", parallel=1, max_queue=1)
    yield srv
    srv.stop()


def _outcome(url: str, barrier: threading.Barrier):
    try:
        events = _stream_once(url, "Count from 1 to 100: 1, 2, 3,", 64, barrier)
    except ClientError as e:
        # A mid-stream error (EventStreamError) has no HTTP status: it reads as None.
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return (e.response["Error"]["Code"], status)
    names = [name for name, _ in events]
    assert names[-1] == "metadata", names
    return ("ok", 200)


def test_throttling_when_queue_is_full(tiny_server):
    n = 6
    barrier = threading.Barrier(n)
    with ThreadPoolExecutor(max_workers=n) as pool:
        outcomes = list(pool.map(lambda _: _outcome(tiny_server.url, barrier), range(n)))

    assert ("ok", 200) in outcomes, outcomes
    assert ("ThrottlingException", 429) in outcomes, outcomes
    assert all(o in (("ok", 200), ("ThrottlingException", 429)) for o in outcomes), outcomes
    # Shedding load leaves the server usable.
    assert_healthy(support.boto_client("bedrock-runtime", tiny_server.url))
