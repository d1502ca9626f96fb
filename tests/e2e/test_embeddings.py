"""Embeddings end to end: InvokeModel with a Titan body (boto3) and
/v1/embeddings (openai SDK, float and base64), on the real all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import botocore.exceptions
import openai
import pytest

import support
from support import EMBED_MODEL_ID, MODEL_ID

# all-MiniLM-L6-v2's "hello world", computed in numpy from the model's own
# weights (crates/basalt-engine/tests/fixtures/minilm_reference.py). The default
# conversion stores the layers as Q8_0, which stays within 0.999 cosine of it.
_REFERENCE = Path(__file__).resolve().parents[2] / "crates/basalt-engine/tests/fixtures/minilm_reference.json"
HELLO_WORLD = next(r["embedding"] for r in json.loads(_REFERENCE.read_text()) if r["text"] == "hello world")


def _invoke(runtime, body: dict, model: str = EMBED_MODEL_ID) -> dict:
    resp = runtime.invoke_model(modelId=model, body=json.dumps(body))
    return json.loads(resp["body"].read())


def _cos(a, b) -> float:
    return sum(x * y for x, y in zip(a, b)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


def test_titan_body_returns_the_reference_embedding(runtime):
    out = _invoke(runtime, {"inputText": "hello world"})
    assert len(out["embedding"]) == 384
    assert out["inputTextTokenCount"] == 4  # [CLS] hello world [SEP]
    assert _cos(out["embedding"], HELLO_WORLD) > 0.999
    assert math.fsum(x * x for x in out["embedding"]) == pytest.approx(1.0, abs=1e-4)


def test_titan_normalize_false_and_embedding_types(runtime):
    raw = _invoke(runtime, {"inputText": "hello world", "normalize": False})
    norm = math.sqrt(math.fsum(x * x for x in raw["embedding"]))
    assert norm > 1.5  # mean-pooled BERT output before normalization
    assert _cos(raw["embedding"], HELLO_WORLD) > 0.999
    both = _invoke(runtime, {"inputText": "hello world", "embeddingTypes": ["float", "binary"], "dimensions": 384})
    assert both["embeddingsByType"]["float"] == both["embedding"]
    assert both["embeddingsByType"]["binary"] == [1 if x > 0 else 0 for x in both["embedding"]]


def test_similar_texts_are_closer_than_unrelated_ones(runtime):
    a = _invoke(runtime, {"inputText": "How do I reset my password?"})["embedding"]
    b = _invoke(runtime, {"inputText": "I forgot my password and need to change it."})["embedding"]
    c = _invoke(runtime, {"inputText": "The volcano erupted in 1883."})["embedding"]
    assert _cos(a, b) > _cos(a, c) + 0.3


@pytest.mark.parametrize(
    "body, message",
    [
        ({"inputText": ""}, "inputText"),
        ({"inputText": "x", "dimensions": 1024}, "dimensions"),
        ({"inputText": "x", "embeddingTypes": ["int8"]}, "embeddingTypes"),
        ({"inputText": "x", "bogus": 1}, "bogus"),
    ],
)
def test_bad_titan_bodies_are_validation_errors(runtime, body, message):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        _invoke(runtime, body)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert message in e.value.response["Error"]["Message"]


def test_chat_and_embedding_models_refuse_each_others_calls(runtime):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        _invoke(runtime, {"inputText": "hello"}, model=MODEL_ID)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "does not produce embeddings" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        runtime.converse(modelId=EMBED_MODEL_ID, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "embedding model" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        runtime.invoke_model_with_response_stream(modelId=EMBED_MODEL_ID, body=json.dumps({"inputText": "hi"}))
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_openai_embeddings_batch_float_and_base64(oai):
    texts = ["hello world", "the second input", "a third, longer input about volcanoes"]
    # The SDK asks for base64 by default and decodes it.
    default = oai.embeddings.create(model=EMBED_MODEL_ID, input=texts)
    floats = oai.embeddings.create(model=EMBED_MODEL_ID, input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 3 * 2
    for d, f in zip(default.data, floats.data):
        assert len(f.embedding) == 384
        assert d.embedding == pytest.approx(f.embedding, abs=1e-6)
    assert _cos(floats.data[0].embedding, HELLO_WORLD) > 0.999
    single = oai.embeddings.create(model=EMBED_MODEL_ID, input="the second input", encoding_format="float")
    assert _cos(single.data[0].embedding, floats.data[1].embedding) > 0.9999


def test_openai_embeddings_errors(oai):
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=EMBED_MODEL_ID, input=[[1, 2, 3]])
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=EMBED_MODEL_ID, input=[])
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=EMBED_MODEL_ID, input="x", dimensions=64)
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="no-such-model", input="x")
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=MODEL_ID, input="x")


def test_metrics_count_embedded_inputs_and_tokens(server, runtime):
    def sample(name):
        return support.metric_sum(support.get_metrics(server.url), name, model=EMBED_MODEL_ID) or 0

    before = {n: sample(n) for n in ("basalt_embedding_inputs_total", "basalt_embedding_tokens_total",
                                     "basalt_embedding_passes_total", "basalt_embedding_kernel_passes_total")}
    _invoke(runtime, {"inputText": "four words of text"})
    assert sample("basalt_embedding_inputs_total") == before["basalt_embedding_inputs_total"] + 1
    # [CLS] four words of text [SEP]
    assert sample("basalt_embedding_tokens_total") == before["basalt_embedding_tokens_total"] + 6
    assert sample("basalt_embedding_passes_total") == before["basalt_embedding_passes_total"] + 1
    # A short input takes basalt's own encoder where the CPU has AVX-512 VNNI.
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    own = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= set(flags)
    assert sample("basalt_embedding_kernel_passes_total") == before["basalt_embedding_kernel_passes_total"] + own
    assert support.metric_sum(support.get_metrics(server.url), "basalt_embedding_express_requests_total",
                              model=EMBED_MODEL_ID) is not None
