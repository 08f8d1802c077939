"""The router interface: how traffic is split between revisions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from modeldeploy.core.children import Owner


class Router(Protocol):
    def reconcile(self, owner: Owner, stable_revision: str) -> None:
        """Make sure the entry points (user Service, route) exist and are owned."""

    def set_weights(self, owner: Owner, weights: Mapping[str, int]) -> None:
        """Send each revision its share of traffic (percent, summing to 100)."""

    def read_weights(self, owner: Owner) -> dict[str, int]:
        """The shares the data plane applies right now."""

    def finalize(self, owner: Owner) -> None:
        """Remove what owner references cannot garbage-collect."""
