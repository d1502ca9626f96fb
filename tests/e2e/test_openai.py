"""OpenAI-compatible API (/v1) driven by the official openai SDK: chat
completions with and without streaming, model listing, error classes."""

from __future__ import annotations

import openai
import pytest

from support import MODEL_ID, user

MESSAGES = [
    {"role": "system", "content": "You are a storyteller."},
    {"role": "user", "content": "Once upon a time, in a small village by the sea,"},
]


def _create(oai, **kwargs):
    args = dict(model=MODEL_ID, messages=MESSAGES, max_tokens=16, temperature=0)
    args.update(kwargs)
    return oai.chat.completions.create(**args)


def test_chat_completion(oai):
    resp = _create(oai, stream=False)
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")

    usage = resp.usage
    assert usage.prompt_tokens > 0
    assert 0 <= usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if choice.finish_reason == "length":
        assert usage.completion_tokens == 16


def test_chat_completion_stream_with_usage(oai):
    whole = _create(oai, stream=False)
    chunks = list(_create(oai, stream=True, stream_options={"include_usage": True}))
    assert chunks

    text = ""
    finish_reasons = []
    for chunk in chunks[:-1]:
        assert chunk.usage is None
        for choice in chunk.choices:
            if choice.delta.content:
                text += choice.delta.content
            if choice.finish_reason is not None:
                finish_reasons.append(choice.finish_reason)

    last = chunks[-1]
    assert last.usage is not None, "the last chunk must carry usage"
    assert last.choices == []
    assert finish_reasons == [whole.choices[0].finish_reason]
    assert text == whole.choices[0].message.content
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens
    assert last.usage.completion_tokens == whole.usage.completion_tokens
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_chat_completion_stream_without_usage(oai):
    chunks = list(_create(oai, stream=True, max_tokens=4))
    assert chunks
    assert all(chunk.usage is None for chunk in chunks)
    assert any(c.finish_reason for chunk in chunks for c in chunk.choices)


def test_prompt_tokens_agree_with_bedrock_count(oai, runtime):
    """OpenAI chat and Converse reduce to one request: same prompt, same count."""
    resp = _create(oai, max_tokens=2)
    counted = runtime.count_tokens(
        modelId=MODEL_ID,
        input={
            "converse": {
                "system": [{"text": MESSAGES[0]["content"]}],
                "messages": [user(MESSAGES[1]["content"])],
            }
        },
    )
    assert resp.usage.prompt_tokens == counted["inputTokens"]


def test_models_list(oai):
    ids = [m.id for m in oai.models.list()]
    assert MODEL_ID in ids


def test_models_retrieve(oai):
    model = oai.models.retrieve(MODEL_ID)
    assert model.id == MODEL_ID and model.owned_by == "Google"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("acme.no-such-model-v1")


def test_unknown_model(oai):
    with pytest.raises(openai.NotFoundError):
        _create(oai, model="acme.no-such-model-v1")


def test_empty_messages(oai):
    with pytest.raises(openai.BadRequestError):
        _create(oai, messages=[])
