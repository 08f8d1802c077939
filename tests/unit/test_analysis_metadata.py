"""The model metadata probe against a scripted HTTP transport."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modeldeploy.adapters.metadata import MetadataContractProvider, parse_contract
from modeldeploy.core.analysis import Contracts, MeasurementError, ModelContract, TensorSpec

METADATA = {
    "name": "iris",
    "versions": ["v1"],
    "platform": "onnxruntime",
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
}
IRIS = ModelContract(
    (TensorSpec("input", "FP32", (-1, 4)),), (TensorSpec("label", "INT64", (-1,)),)
)


def test_parse_contract() -> None:
    assert parse_contract(METADATA) == IRIS


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"inputs": []}, id="no-outputs"),
        pytest.param({**METADATA, "inputs": [{"name": "x", "shape": [1]}]}, id="no-datatype"),
        pytest.param(
            {**METADATA, "inputs": [{"name": "x", "datatype": "FP32", "shape": ["a"]}]},
            id="bad-shape",
        ),
        pytest.param({**METADATA, "outputs": ["label"]}, id="not-an-object-tensor"),
    ],
)
def test_parse_contract_refuses_what_is_not_model_metadata(payload: Any) -> None:
    with pytest.raises(ValueError, match=r"must|needs"):
        parse_contract(payload)


def serve(answers: dict[str, httpx.Response | Exception]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers[request.url.host]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler)


async def contracts(answers: dict[str, httpx.Response | Exception]) -> Contracts | MeasurementError:
    async with MetadataContractProvider(retries=1, transport=serve(answers)) as probe:
        return await probe.contracts("http://canary:3000/", "http://stable:3000", "iris")


async def test_reads_both_contracts_from_the_metadata_endpoint() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=METADATA)

    async with MetadataContractProvider(transport=httpx.MockTransport(handler)) as probe:
        got = await probe.contracts("http://canary:3000/", "http://stable:3000", "iris")
    assert got == Contracts(IRIS, IRIS)
    assert sorted(seen) == [
        "http://canary:3000/v2/models/iris",
        "http://stable:3000/v2/models/iris",
    ]


@pytest.mark.parametrize(
    ("canary", "says"),
    [
        pytest.param(httpx.Response(404, text="no such model"), "canary metadata", id="404"),
        pytest.param(httpx.Response(503), "HTTP 503 (tried 2 times)", id="5xx"),
        pytest.param(httpx.Response(200, text="<html>"), "not model metadata", id="not-json"),
        pytest.param(httpx.ConnectError("refused"), "unreachable", id="refused"),
        pytest.param(httpx.ReadTimeout("slow"), "did not answer", id="timeout"),
    ],
)
async def test_failures_become_measurement_errors(
    canary: httpx.Response | Exception, says: str
) -> None:
    got = await contracts({"canary": canary, "stable": httpx.Response(200, json=METADATA)})
    assert isinstance(got, MeasurementError)
    assert says in got.reason
