"""Authentication on a server with an [auth] section: SigV4 for the AWS APIs
(verified against the configured secret) and bearer API keys for /v1."""

from __future__ import annotations

import json

import openai
import pytest
import requests
from botocore.exceptions import ClientError

import support
from support import (
    AUTH_ACCESS_KEY_ID,
    AUTH_API_KEY,
    AUTH_SECRET_ACCESS_KEY,
    MODEL_ID,
    collect_converse_stream,
    user,
)


@pytest.fixture(scope="module")
def auth_server(start_server):
    srv = start_server("basalt-auth", auth=True)
    yield srv
    srv.stop()


def _runtime(srv, secret=AUTH_SECRET_ACCESS_KEY, key=AUTH_ACCESS_KEY_ID):
    return support.boto_client("bedrock-runtime", srv.url, access_key=key, secret_key=secret)


def _control(srv, secret=AUTH_SECRET_ACCESS_KEY, key=AUTH_ACCESS_KEY_ID):
    return support.boto_client("bedrock", srv.url, access_key=key, secret_key=secret)


def _denied(exc_info) -> None:
    resp = exc_info.value.response
    assert resp["Error"]["Code"] == "AccessDeniedException", resp["Error"]
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 403


# ---------------------------------------------------------------- SigV4


def test_sigv4_converse(auth_server):
    resp = support.converse(_runtime(auth_server), "Hello", max_tokens=4)
    assert resp["output"]["message"]["role"] == "assistant"


def test_sigv4_converse_stream(auth_server):
    resp = _runtime(auth_server).converse_stream(
        modelId=MODEL_ID, messages=[user("Hello")], inferenceConfig={"maxTokens": 4}
    )
    names = [name for name, _ in collect_converse_stream(resp)]
    assert names[-1] == "metadata"


def test_sigv4_invoke_model(auth_server):
    resp = _runtime(auth_server).invoke_model(
        modelId=MODEL_ID, body=json.dumps({"prompt": "Hello", "max_gen_len": 4})
    )
    assert "generation" in json.loads(resp["body"].read())


def test_sigv4_list_foundation_models(auth_server):
    resp = _control(auth_server).list_foundation_models(byProvider="google")
    assert MODEL_ID in [m["modelId"] for m in resp["modelSummaries"]]


def test_wrong_secret_is_denied_on_runtime(auth_server):
    with pytest.raises(ClientError) as info:
        support.converse(_runtime(auth_server, secret="WRONGSECRET"), "Hello", max_tokens=4)
    _denied(info)


def test_wrong_secret_is_denied_on_control_plane(auth_server):
    with pytest.raises(ClientError) as info:
        _control(auth_server, secret="WRONGSECRET").list_foundation_models()
    _denied(info)


def test_unknown_access_key_is_denied(auth_server):
    with pytest.raises(ClientError) as info:
        support.converse(
            _runtime(auth_server, key="AKIDUNKNOWN", secret=AUTH_SECRET_ACCESS_KEY),
            "Hello",
            max_tokens=4,
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unsigned_request_is_rejected(auth_server):
    resp = requests.post(
        f"{auth_server.url}/model/{MODEL_ID}/converse",
        json={"messages": [user("Hello")], "inferenceConfig": {"maxTokens": 4}},
        timeout=30,
    )
    assert resp.status_code == 403, resp.text


# ---------------------------------------------------------------- API keys (/v1)


def test_api_key_accepted(auth_server):
    client = support.openai_client(auth_server.url, api_key=AUTH_API_KEY)
    resp = client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": "Hello"}], max_tokens=4
    )
    assert isinstance(resp.choices[0].message.content, str)
    assert MODEL_ID in [m.id for m in client.models.list()]


def test_wrong_api_key_rejected(auth_server):
    client = support.openai_client(auth_server.url, api_key="sk-wrong-456")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": "Hello"}], max_tokens=4
        )
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
