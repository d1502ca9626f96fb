"""Bedrock Runtime data plane against the real binary: Converse, ConverseStream,
InvokeModel / InvokeModelWithResponseStream with Meta Llama and Anthropic
Messages bodies, CountTokens, request ids.

The model is a tiny base model: these tests check mechanics (shapes, counts,
stop reasons, stream/non-stream agreement at temperature 0), never content.
"""

from __future__ import annotations

import json

import pytest

from support import (
    MODEL_ID,
    collect_converse_stream,
    converse,
    stream_text,
    user,
)

PROMPT = "Once upon a time, in a small village by the sea,"
SYSTEM = "You are a storyteller."


def _check_usage(usage: dict, max_tokens: int) -> None:
    assert isinstance(usage["inputTokens"], int) and usage["inputTokens"] > 0
    assert isinstance(usage["outputTokens"], int)
    assert 0 <= usage["outputTokens"] <= max_tokens
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def _check_stop(stop_reason: str, output_tokens: int, max_tokens: int) -> None:
    assert stop_reason in ("end_turn", "max_tokens"), stop_reason
    if stop_reason == "max_tokens":
        assert output_tokens == max_tokens
    else:
        assert output_tokens <= max_tokens


# ---------------------------------------------------------------- Converse


def test_converse_response_shape(runtime):
    resp = converse(runtime, PROMPT, max_tokens=16)
    message = resp["output"]["message"]
    assert message["role"] == "assistant"
    assert len(message["content"]) == 1
    assert isinstance(message["content"][0]["text"], str)
    _check_usage(resp["usage"], 16)
    _check_stop(resp["stopReason"], resp["usage"]["outputTokens"], 16)
    assert isinstance(resp["metrics"]["latencyMs"], int)
    assert resp["metrics"]["latencyMs"] >= 0


def test_converse_max_tokens_stops_generation(runtime):
    resp = converse(runtime, "1, 2, 3, 4, 5, 6, 7, 8,", max_tokens=8)
    _check_stop(resp["stopReason"], resp["usage"]["outputTokens"], 8)


def test_converse_temperature_zero_is_deterministic(runtime):
    first = converse(runtime, PROMPT, max_tokens=16)
    second = converse(runtime, PROMPT, max_tokens=16)
    assert (
        first["output"]["message"]["content"][0]["text"]
        == second["output"]["message"]["content"][0]["text"]
    )
    assert first["usage"] == second["usage"]


def test_converse_with_system_and_multi_turn(runtime):
    resp = runtime.converse(
        modelId=MODEL_ID,
        system=[{"text": SYSTEM}],
        messages=[
            user("Tell me a story."),
            {"role": "assistant", "content": [{"text": "Once upon a time"}]},
            user("Go on."),
        ],
        inferenceConfig={"maxTokens": 12, "temperature": 0.0},
    )
    assert resp["output"]["message"]["role"] == "assistant"
    _check_usage(resp["usage"], 12)


# ---------------------------------------------------------------- ConverseStream


def test_converse_stream_event_order(runtime):
    resp = runtime.converse_stream(
        modelId=MODEL_ID,
        messages=[user(PROMPT)],
        inferenceConfig={"maxTokens": 16, "temperature": 0.0},
    )
    events = collect_converse_stream(resp)
    names = [name for name, _ in events]

    assert names[0] == "messageStart", names
    assert events[0][1]["role"] == "assistant"
    assert names[-3:] == ["contentBlockStop", "messageStop", "metadata"], names
    middle = names[1:-3]
    assert all(n == "contentBlockDelta" for n in middle), names

    for name, payload in events:
        if name in ("contentBlockDelta", "contentBlockStop"):
            assert payload["contentBlockIndex"] == 0
        if name == "contentBlockDelta":
            assert isinstance(payload["delta"]["text"], str)

    stop = events[-2][1]
    meta = events[-1][1]
    _check_usage(meta["usage"], 16)
    _check_stop(stop["stopReason"], meta["usage"]["outputTokens"], 16)
    assert isinstance(meta["metrics"]["latencyMs"], int)
    if stop["stopReason"] == "max_tokens":
        assert middle, "16 tokens were generated but no contentBlockDelta was sent"


def test_converse_stream_matches_converse(runtime):
    kwargs = dict(
        modelId=MODEL_ID,
        system=[{"text": SYSTEM}],
        messages=[user(PROMPT)],
        inferenceConfig={"maxTokens": 24, "temperature": 0.0},
    )
    whole = runtime.converse(**kwargs)
    events = collect_converse_stream(runtime.converse_stream(**kwargs))
    meta = dict(events)["metadata"]
    stop = dict(events)["messageStop"]

    assert stream_text(events) == whole["output"]["message"]["content"][0]["text"]
    assert stop["stopReason"] == whole["stopReason"]
    assert meta["usage"]["inputTokens"] == whole["usage"]["inputTokens"]
    assert meta["usage"]["outputTokens"] == whole["usage"]["outputTokens"]


# ---------------------------------------------------------------- InvokeModel: Llama


def _llama_body(prompt: str, max_gen_len: int) -> str:
    return json.dumps(
        {"prompt": prompt, "max_gen_len": max_gen_len, "temperature": 0.0, "top_p": 0.9}
    )


def test_invoke_model_llama_body(runtime):
    resp = runtime.invoke_model(
        modelId=MODEL_ID,
        body=_llama_body(PROMPT, 16),
        contentType="application/json",
        accept="application/json",
    )
    assert resp["contentType"].startswith("application/json")
    out = json.loads(resp["body"].read())
    assert isinstance(out["generation"], str)
    assert isinstance(out["prompt_token_count"], int) and out["prompt_token_count"] > 0
    assert isinstance(out["generation_token_count"], int)
    assert out["stop_reason"] in ("stop", "length")
    if out["stop_reason"] == "length":
        assert out["generation_token_count"] == 16
    else:
        assert out["generation_token_count"] <= 16


def test_invoke_model_llama_stream(runtime):
    body = _llama_body(PROMPT, 16)
    whole = json.loads(runtime.invoke_model(modelId=MODEL_ID, body=body)["body"].read())
    resp = runtime.invoke_model_with_response_stream(
        modelId=MODEL_ID, body=body, contentType="application/json", accept="application/json"
    )
    chunks = []
    for event in resp["body"]:
        assert set(event) == {"chunk"}, event
        chunks.append(json.loads(event["chunk"]["bytes"]))
    assert chunks, "no chunk events"

    for chunk in chunks:
        assert isinstance(chunk["generation"], str)
        assert isinstance(chunk["generation_token_count"], int)
    # Only the last chunk says why generation stopped.
    assert [c["stop_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    last = chunks[-1]
    assert last["stop_reason"] in ("stop", "length")
    metrics = last["amazon-bedrock-invocationMetrics"]
    for key in ("inputTokenCount", "outputTokenCount", "invocationLatency", "firstByteLatency"):
        assert isinstance(metrics[key], int), (key, metrics)

    prompt_counts = [c["prompt_token_count"] for c in chunks if c.get("prompt_token_count") is not None]
    assert prompt_counts and prompt_counts[0] == metrics["inputTokenCount"]
    assert metrics["inputTokenCount"] == whole["prompt_token_count"]
    assert metrics["outputTokenCount"] == whole["generation_token_count"]
    assert "".join(c["generation"] for c in chunks) == whole["generation"]
    assert last["stop_reason"] == whole["stop_reason"]


# ---------------------------------------------------------------- InvokeModel: Anthropic


def _anthropic_body(max_tokens: int, **extra) -> str:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": max_tokens,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0.0,
    }
    body.update(extra)
    return json.dumps(body)


def test_invoke_model_anthropic_body(runtime):
    resp = runtime.invoke_model(modelId=MODEL_ID, body=_anthropic_body(16))
    out = json.loads(resp["body"].read())
    assert isinstance(out["id"], str) and out["id"]
    assert out["type"] == "message"
    assert out["role"] == "assistant"
    assert "model" in out
    assert len(out["content"]) == 1
    assert out["content"][0]["type"] == "text"
    assert isinstance(out["content"][0]["text"], str)
    assert out["stop_reason"] in ("end_turn", "max_tokens")
    assert "stop_sequence" in out and out["stop_sequence"] is None
    usage = out["usage"]
    assert isinstance(usage["input_tokens"], int) and usage["input_tokens"] > 0
    if out["stop_reason"] == "max_tokens":
        assert usage["output_tokens"] == 16
    else:
        assert usage["output_tokens"] <= 16


def test_invoke_model_anthropic_content_blocks(runtime):
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        }
    )
    out = json.loads(runtime.invoke_model(modelId=MODEL_ID, body=body)["body"].read())
    assert out["type"] == "message"
    assert out["usage"]["output_tokens"] <= 8


def test_invoke_model_anthropic_stream(runtime):
    body = _anthropic_body(16)
    whole = json.loads(runtime.invoke_model(modelId=MODEL_ID, body=body)["body"].read())
    resp = runtime.invoke_model_with_response_stream(modelId=MODEL_ID, body=body)
    events = [json.loads(e["chunk"]["bytes"]) for e in resp["body"]]
    types = [e["type"] for e in events]

    assert types[0] == "message_start", types
    assert events[0]["message"]["role"] == "assistant"
    assert types[1] == "content_block_start", types
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"], types
    assert all(t == "content_block_delta" for t in types[2:-3]), types

    text = ""
    for e in events[2:-3]:
        assert e["index"] == 0
        assert e["delta"]["type"] == "text_delta"
        text += e["delta"]["text"]
    assert text == whole["content"][0]["text"]

    delta = events[-2]
    assert delta["delta"]["stop_reason"] == whole["stop_reason"]
    assert delta["usage"]["output_tokens"] == whole["usage"]["output_tokens"]
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == whole["usage"]["input_tokens"]
    assert metrics["outputTokenCount"] == whole["usage"]["output_tokens"]


# ---------------------------------------------------------------- CountTokens


def test_count_tokens_converse_matches_usage(runtime):
    messages = [user(PROMPT)]
    system = [{"text": SYSTEM}]
    counted = runtime.count_tokens(
        modelId=MODEL_ID, input={"converse": {"messages": messages, "system": system}}
    )
    resp = runtime.converse(
        modelId=MODEL_ID,
        messages=messages,
        system=system,
        inferenceConfig={"maxTokens": 4, "temperature": 0.0},
    )
    assert isinstance(counted["inputTokens"], int)
    assert counted["inputTokens"] == resp["usage"]["inputTokens"]


def test_count_tokens_grows_with_input(runtime):
    short = runtime.count_tokens(
        modelId=MODEL_ID, input={"converse": {"messages": [user("Hello")]}}
    )["inputTokens"]
    longer = runtime.count_tokens(
        modelId=MODEL_ID,
        input={"converse": {"messages": [user("Hello")], "system": [{"text": SYSTEM}]}},
    )["inputTokens"]
    assert 0 < short < longer


def test_count_tokens_invoke_model_llama_body(runtime):
    body = _llama_body(PROMPT, 4)
    counted = runtime.count_tokens(
        modelId=MODEL_ID, input={"invokeModel": {"body": body.encode()}}
    )
    out = json.loads(runtime.invoke_model(modelId=MODEL_ID, body=body)["body"].read())
    assert counted["inputTokens"] == out["prompt_token_count"]


def test_count_tokens_invoke_model_anthropic_body(runtime):
    body = _anthropic_body(4)
    counted = runtime.count_tokens(
        modelId=MODEL_ID, input={"invokeModel": {"body": body.encode()}}
    )
    out = json.loads(runtime.invoke_model(modelId=MODEL_ID, body=body)["body"].read())
    assert counted["inputTokens"] == out["usage"]["input_tokens"]


# ---------------------------------------------------------------- request ids


@pytest.mark.parametrize(
    "call",
    ["converse", "converse_stream", "invoke_model", "invoke_stream", "count_tokens"],
)
def test_request_id_on_every_operation(runtime, call):
    messages = [user("Hi")]
    if call == "converse":
        resp = runtime.converse(modelId=MODEL_ID, messages=messages, inferenceConfig={"maxTokens": 2})
    elif call == "converse_stream":
        resp = runtime.converse_stream(
            modelId=MODEL_ID, messages=messages, inferenceConfig={"maxTokens": 2}
        )
        collect_converse_stream(resp)
    elif call == "invoke_model":
        resp = runtime.invoke_model(modelId=MODEL_ID, body=_llama_body("Hi", 2))
        resp["body"].read()
    elif call == "invoke_stream":
        resp = runtime.invoke_model_with_response_stream(
            modelId=MODEL_ID, body=_llama_body("Hi", 2)
        )
        list(resp["body"])
    else:
        resp = runtime.count_tokens(modelId=MODEL_ID, input={"converse": {"messages": messages}})
    meta = resp["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    assert meta["RequestId"], meta
    assert meta["HTTPHeaders"].get("x-amzn-requestid") == meta["RequestId"]


def test_request_ids_are_unique(runtime):
    ids = {
        runtime.count_tokens(modelId=MODEL_ID, input={"converse": {"messages": [user("Hi")]}})[
            "ResponseMetadata"
        ]["RequestId"]
        for _ in range(3)
    }
    assert len(ids) == 3


def test_request_id_on_error_response(runtime):
    with pytest.raises(runtime.exceptions.ValidationException) as info:
        runtime.converse(modelId=MODEL_ID, messages=[])
    assert info.value.response["ResponseMetadata"]["RequestId"]
