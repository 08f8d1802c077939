"""Command-line entry points.

``modeldeploy-operator`` runs the operator (all namespaces, current
kubeconfig or in-cluster credentials). ``kubectl-modeldeploy`` is a kubectl
plugin: ``kubectl modeldeploy promote|pause|resume|abort|status NAME``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from modeldeploy.core import commands
from modeldeploy.core.api import ModelDeploymentStatus

Command = Callable[[ModelDeploymentStatus], dict[str, str | None]]

COMMANDS: dict[str, Command] = {
    "promote": commands.promote,
    "pause": commands.pause,
    "resume": commands.resume,
    "abort": commands.abort,
}


def operator_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="modeldeploy-operator", description="Run the modeldeploy operator."
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    args = parser.parse_args(argv)

    import kopf  # noqa: PLC0415 - only the operator needs kopf loaded

    from modeldeploy import handlers  # noqa: F401, PLC0415 - registers the handlers

    kopf.configure(verbose=args.verbose)
    asyncio.run(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=True,
            liveness_endpoint=args.liveness,
        )
    )


def _namespace(explicit: str | None) -> str:
    return explicit or os.environ.get("MODELDEPLOY_NAMESPACE") or "default"


def kubectl_plugin_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kubectl modeldeploy", description="Steer ModelDeployment rollouts."
    )
    parser.add_argument("command", choices=[*COMMANDS, "status"])
    parser.add_argument("name", help="the ModelDeployment")
    parser.add_argument("-n", "--namespace", default=None)
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument(
        "--full", action="store_true", help="promote: skip every remaining step and analysis"
    )
    args = parser.parse_args(argv)

    from modeldeploy.adapters.kube import Kube, load_config  # noqa: PLC0415

    namespace = _namespace(args.namespace)
    kube = Kube(load_config(args.kubeconfig or os.environ.get("KUBECONFIG")))
    body = kube.get_model_deployment(namespace, args.name)
    if body is None:
        print(f"error: modeldeployment {namespace}/{args.name} not found", file=sys.stderr)
        return 1
    try:
        status = ModelDeploymentStatus.model_validate(body.get("status") or {})
    except ValidationError as exc:
        print(f"error: unreadable status: {exc}", file=sys.stderr)
        return 1
    if args.command == "status":
        print(json.dumps(status.model_dump(by_alias=True, mode="json"), indent=2))
        return 0
    try:
        if args.command == "promote":
            annotations = commands.promote(status, full=args.full)
        else:
            annotations = COMMANDS[args.command](status)
    except commands.NoCanaryError as exc:
        print(f"error: {namespace}/{args.name}: {exc}", file=sys.stderr)
        return 1
    kube.annotate(namespace, args.name, annotations)
    print(f"modeldeployment {namespace}/{args.name}: {args.command} requested")
    return 0
