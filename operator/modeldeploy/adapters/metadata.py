"""The model metadata probe: each revision's model contract, for the ``contract`` check.

Sits in ``adapters`` and implements ``core.analysis.ContractProvider``. It asks
a revision's serving endpoint for ``GET {base_url}/v2/models/{name}`` (Open
Inference Protocol metadata: inputs and outputs with name, datatype and shape)
and returns both revisions' contracts side by side. Like the Prometheus
provider it never raises for the outside world's faults: an unreachable or
slow endpoint, an error status or a body that is not model metadata becomes a
``MeasurementError``, which the check reports as ``Inconclusive``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx

from modeldeploy.core.analysis import Contracts, MeasurementError, ModelContract, TensorSpec


class MetadataError(Exception):
    """Internal: one revision's metadata could not be read."""


def parse_contract(payload: Any) -> ModelContract:
    """A ``ModelContract`` from an Open Inference Protocol model-metadata body."""
    if not isinstance(payload, dict):
        raise ValueError("model metadata must be a JSON object")
    return ModelContract(
        inputs=_tensors(payload.get("inputs"), "inputs"),
        outputs=_tensors(payload.get("outputs"), "outputs"),
    )


def _tensors(items: Any, field: str) -> tuple[TensorSpec, ...]:
    if not isinstance(items, list):
        raise ValueError(f"{field} must be a list")
    specs = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"each of {field} must be an object")
        name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise ValueError(f"each of {field} needs a name and a datatype")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in shape
        ):
            raise ValueError(f"{field} {name!r}: shape must be a list of integers")
        specs.append(TensorSpec(name, datatype, tuple(shape)))
    return tuple(specs)


class MetadataContractProvider:
    """Reads model contracts over HTTP, with a timeout and one retry."""

    def __init__(
        self,
        *,
        timeout_seconds: float = 5.0,
        retries: int = 1,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds), transport=transport
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> MetadataContractProvider:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def contracts(
        self, canary_url: str, stable_url: str, model_name: str
    ) -> Contracts | MeasurementError:
        """Both revisions' contracts, read concurrently; never raises."""
        try:
            canary, stable = await asyncio.gather(
                self.contract(canary_url, model_name, "canary"),
                self.contract(stable_url, model_name, "stable"),
            )
        except MetadataError as exc:
            return MeasurementError(str(exc))
        except Exception as exc:  # a handler must survive any surprise from here
            return MeasurementError(f"reading model metadata failed: {exc!r}")
        return Contracts(canary=canary, stable=stable)

    async def contract(self, base_url: str, model_name: str, who: str) -> ModelContract:
        """One revision's contract; raises ``MetadataError`` with a reason for status."""
        url = f"{base_url.rstrip('/')}/v2/models/{quote(model_name, safe='')}"
        reason = ""
        for _ in range(self.retries + 1):
            try:
                response = await self._client.get(url)
            except httpx.TimeoutException:
                reason = f"{who} metadata at {url} did not answer in {self.timeout_seconds}s"
                continue
            except httpx.HTTPError as exc:
                reason = f"{who} metadata at {url} is unreachable: {exc!r}"
                continue
            if response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR:
                reason = f"{who} metadata at {url} answered HTTP {response.status_code}"
                continue
            return _contract_of(response, who, url)
        raise MetadataError(f"{reason} (tried {self.retries + 1} times)")


def _contract_of(response: httpx.Response, who: str, url: str) -> ModelContract:
    if response.status_code != httpx.codes.OK:
        raise MetadataError(f"{who} metadata at {url} answered HTTP {response.status_code}")
    try:
        return parse_contract(response.json())
    except ValueError as exc:
        raise MetadataError(f"{who} metadata at {url} is not model metadata: {exc}") from None


async def measure_contracts(
    canary_url: str, stable_url: str, model_name: str, *, timeout_seconds: float = 5.0
) -> Contracts | MeasurementError:
    """One-off convenience: both contracts with a short-lived client."""
    async with MetadataContractProvider(timeout_seconds=timeout_seconds) as provider:
        return await provider.contracts(canary_url, stable_url, model_name)
