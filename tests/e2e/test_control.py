"""Bedrock control plane: ListFoundationModels (with its filters) and
GetFoundationModel for the configured local model."""

from __future__ import annotations

import pytest

from support import EMBED_MODEL_ID, MODEL_ARN, MODEL_ID


def _ids(resp) -> list[str]:
    return [m["modelId"] for m in resp["modelSummaries"]]


def _check_model(model: dict) -> None:
    assert model["modelId"] == MODEL_ID
    assert model["modelArn"] == MODEL_ARN
    assert model["modelName"] == "Gemma 3 270M"
    assert model["providerName"] == "Google"
    assert model["inputModalities"] == ["TEXT"]
    assert model["outputModalities"] == ["TEXT"]
    assert model["responseStreamingSupported"] is True
    assert model["inferenceTypesSupported"] == ["ON_DEMAND"]


def test_list_foundation_models(control):
    resp = control.list_foundation_models()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["ResponseMetadata"]["RequestId"]
    matches = [m for m in resp["modelSummaries"] if m["modelId"] == MODEL_ID]
    assert len(matches) == 1, _ids(resp)
    _check_model(matches[0])


@pytest.mark.parametrize("provider", ["Google", "google", "GOOGLE"])
def test_filter_by_provider_matches_case_insensitively(control, provider):
    assert MODEL_ID in _ids(control.list_foundation_models(byProvider=provider))


def test_filter_by_other_provider_excludes(control):
    resp = control.list_foundation_models(byProvider="Acme")
    assert MODEL_ID not in _ids(resp)
    assert all(m["providerName"].lower() == "acme" for m in resp["modelSummaries"])


def test_filter_by_output_modality(control):
    assert MODEL_ID in _ids(control.list_foundation_models(byOutputModality="TEXT"))
    resp = control.list_foundation_models(byOutputModality="EMBEDDING")
    assert MODEL_ID not in _ids(resp)
    assert _ids(resp) == [EMBED_MODEL_ID]
    assert all("EMBEDDING" in m["outputModalities"] for m in resp["modelSummaries"])
    assert EMBED_MODEL_ID not in _ids(control.list_foundation_models(byOutputModality="TEXT"))


def test_filter_by_inference_type(control):
    assert MODEL_ID in _ids(control.list_foundation_models(byInferenceType="ON_DEMAND"))
    assert MODEL_ID not in _ids(control.list_foundation_models(byInferenceType="PROVISIONED"))


def test_filters_combine(control):
    both = control.list_foundation_models(byProvider="google", byOutputModality="TEXT")
    assert MODEL_ID in _ids(both)
    neither = control.list_foundation_models(byProvider="google", byOutputModality="IMAGE")
    assert MODEL_ID not in _ids(neither)


def test_get_foundation_model(control):
    resp = control.get_foundation_model(modelIdentifier=MODEL_ID)
    assert resp["ResponseMetadata"]["RequestId"]
    _check_model(resp["modelDetails"])


def test_get_unknown_foundation_model(control):
    with pytest.raises(control.exceptions.ResourceNotFoundException) as info:
        control.get_foundation_model(modelIdentifier="acme.no-such-model-v1")
    err = info.value.response
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err["Error"]["Message"]
