"""Bad inputs get the right AWS error (code, HTTP status, message) and leave the
server healthy: after each one, a normal Converse still succeeds."""

from __future__ import annotations

import json
import re

import pytest
import requests
from botocore.exceptions import ClientError

import support
from support import MODEL_ID, assert_healthy, user

UNKNOWN_MODEL = "acme.no-such-model-v1"


def _error(exc_info) -> tuple[str, int, str]:
    resp = exc_info.value.response
    return (
        resp["Error"]["Code"],
        resp["ResponseMetadata"]["HTTPStatusCode"],
        resp["Error"].get("Message", ""),
    )


def test_empty_messages(runtime):
    with pytest.raises(runtime.exceptions.ValidationException) as info:
        runtime.converse(modelId=MODEL_ID, messages=[], inferenceConfig={"maxTokens": 4})
    code, status, message = _error(info)
    assert (code, status) == ("ValidationException", 400)
    assert message
    assert_healthy(runtime)


@pytest.mark.parametrize("operation", ["converse", "converse_stream", "invoke_model", "count_tokens"])
def test_unknown_model(runtime, operation):
    with pytest.raises(runtime.exceptions.ResourceNotFoundException) as info:
        if operation == "converse":
            runtime.converse(modelId=UNKNOWN_MODEL, messages=[user("Hi")])
        elif operation == "converse_stream":
            resp = runtime.converse_stream(modelId=UNKNOWN_MODEL, messages=[user("Hi")])
            support.collect_converse_stream(resp)
        elif operation == "invoke_model":
            runtime.invoke_model(
                modelId=UNKNOWN_MODEL, body=json.dumps({"prompt": "Hi", "max_gen_len": 2})
            )
        else:
            runtime.count_tokens(
                modelId=UNKNOWN_MODEL, input={"converse": {"messages": [user("Hi")]}}
            )
    code, status, _ = _error(info)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert_healthy(runtime)


def test_max_tokens_zero(server, runtime):
    # botocore enforces maxTokens >= 1 client-side; switch that off to send 0.
    raw = support.boto_client("bedrock-runtime", server.url, parameter_validation=False)
    with pytest.raises(ClientError) as info:
        raw.converse(modelId=MODEL_ID, messages=[user("Hi")], inferenceConfig={"maxTokens": 0})
    code, status, _ = _error(info)
    assert (code, status) == ("ValidationException", 400)
    assert_healthy(runtime)


def test_malformed_json_body(server, runtime):
    resp = requests.post(
        f"{server.url}/model/{MODEL_ID}/converse",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 400
    assert resp.headers["X-Amzn-ErrorType"].startswith("ValidationException")
    assert resp.headers.get("x-amzn-RequestId")
    body = resp.json()
    assert isinstance(body["message"], str) and body["message"]
    assert_healthy(runtime)


def test_invoke_model_body_of_unknown_shape(runtime):
    with pytest.raises(runtime.exceptions.ValidationException):
        runtime.invoke_model(modelId=MODEL_ID, body=json.dumps({"foo": "bar"}))
    assert_healthy(runtime)


def test_body_over_limit(runtime):
    # The server's max_body_bytes is 262144; this request body is > 300 kB.
    with pytest.raises(ClientError) as info:
        runtime.converse(
            modelId=MODEL_ID,
            messages=[user("a" * 300_000)],
            inferenceConfig={"maxTokens": 4},
        )
    code, status, _ = _error(info)
    assert (code, status) == ("ValidationException", 413)
    assert_healthy(runtime)


def test_prompt_longer_than_context(runtime):
    # ~20000 tokens against a context_window of 4096 (and well under the body limit).
    prompt = "word " * 20_000
    with pytest.raises(runtime.exceptions.ValidationException) as info:
        runtime.converse(modelId=MODEL_ID, messages=[user(prompt)], inferenceConfig={"maxTokens": 4})
    code, status, message = _error(info)
    assert (code, status) == ("ValidationException", 400)
    assert re.search(r"context|token", message, re.IGNORECASE), message
    assert_healthy(runtime)


def test_prompt_longer_than_context_streaming(runtime):
    prompt = "word " * 20_000
    with pytest.raises(ClientError) as info:
        resp = runtime.converse_stream(
            modelId=MODEL_ID, messages=[user(prompt)], inferenceConfig={"maxTokens": 4}
        )
        support.collect_converse_stream(resp)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert_healthy(runtime)
