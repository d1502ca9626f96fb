"""Failure paths a production server must answer in the API's own shape and
survive: a model that fails to load (ServiceUnavailableException), a call that
runs past request_timeout_seconds (ModelTimeoutException), and the CLI's
config check and interactive chat."""

from __future__ import annotations

import subprocess

import pytest

import support
from support import MODEL_ID

BROKEN_ID = "acme.broken-model"


@pytest.fixture(scope="module")
def fragile(start_server, tmp_path_factory):
    junk = tmp_path_factory.mktemp("junk") / "broken.gguf"
    junk.write_bytes(b"this is not a GGUF file\n" * 64)
    extra = f"""
[[models]]
id = "{BROKEN_ID}"
provider = "Acme"
chat_template = "chatml"
context_window = 2048
[models.source]
path = "{junk}"
"""
    srv = start_server("fragile", request_timeout_seconds=1, extra_models=extra)
    yield srv
    srv.stop()


def test_model_that_failed_to_load_is_service_unavailable(fragile):
    rt = support.boto_client("bedrock-runtime", fragile.url)
    with pytest.raises(rt.exceptions.ServiceUnavailableException) as e:
        rt.converse(modelId=BROKEN_ID, messages=[support.user("hi")])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert "failed to load" in e.value.response["Error"]["Message"]
    ids = [m["modelId"] for m in support.boto_client("bedrock", fragile.url).list_foundation_models()["modelSummaries"]]
    assert BROKEN_ID in ids and MODEL_ID in ids
    support.assert_healthy(rt)


def test_call_past_the_timeout_is_model_timeout(fragile):
    rt = support.boto_client("bedrock-runtime", fragile.url)
    prompt = "Count from 1 to 1000 in words, one per line:\none\ntwo\nthree\nfour\n"
    with pytest.raises(rt.exceptions.ModelTimeoutException) as e:
        rt.converse(
            modelId=MODEL_ID,
            messages=[support.user(prompt)],
            inferenceConfig={"maxTokens": 3000, "temperature": 0.0},
        )
    assert "1 seconds" in e.value.response["Error"]["Message"]
    support.assert_healthy(rt)


def test_serve_check_validates_the_config(fragile, tmp_path):
    ok = fragile.run_cli("serve", "--check")
    assert ok.returncode == 0, ok.stderr
    assert "config ok" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nlisten_port = 80\n")
    result = subprocess.run(
        [fragile.bin, "serve", "--check", "--config", str(bad)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "listen_port" in result.stderr


def test_chat_cli_streams_an_answer(server):
    result = subprocess.run(
        [server.bin, "chat", "--url", server.url, "--model", MODEL_ID, "--max-tokens", "8", "--temperature", "0"],
        input="Hello there\n\n", capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "chat printed no answer"
