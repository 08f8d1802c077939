"""Test environment for the operator on the local control plane.

- ``install_crd`` applies a CRD (the generated one unless told) and waits until it is served.
- ``OperatorProcess`` runs the real ``modeldeploy-operator`` as a subprocess
  under its own least-privilege ServiceAccount (RBAC from the chart's rules).
- ``FakeKubelet`` stands in for the node: there is no kubelet here, so it
  reports pods Running and Ready through the status subresource, exactly as
  a kubelet would, except for revisions a test holds back.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modeldeploy.core.api import ModelDeploymentSpec
from modeldeploy.core.revision import revision_of

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "charts/modeldeploy/crds/modeldeploy.dev_modeldeployments.yaml"
RBAC_RULES_FILE = ROOT / "charts/modeldeploy/files/operator-rbac-rules.yaml"
SA_KUBECONFIG_SCRIPT = ROOT / "tools/cluster/sa-kubeconfig.sh"
OPERATOR_NAMESPACE = "modeldeploy-system"
OPERATOR_ACCOUNT = "modeldeploy-operator"
GROUP, VERSION, PLURAL = "modeldeploy.dev", "v1alpha1", "modeldeployments"

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def require_tool(name: str, how: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"`{name}` is not on PATH: {how}")
    return path


def kubectl_modeldeploy(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the plugin the way a person does: ``kubectl modeldeploy ...``."""
    kubectl = require_tool("kubectl", "run `make k8s-build` and put its bin directory on PATH")
    require_tool("kubectl-modeldeploy", "run the tests through `make test`")
    return subprocess.run(
        [kubectl, "modeldeploy", *args],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )


# --- CRD and RBAC -------------------------------------------------------------------


def install_crd(api: client.ApiClient, path: Path = CRD_FILE) -> None:
    ext = client.ApiextensionsV1Api(api)
    body = yaml.safe_load(path.read_text())
    name = body["metadata"]["name"]
    try:
        current = ext.read_custom_resource_definition(name)
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        ext.replace_custom_resource_definition(name, body)
    except ApiException as exc:
        if exc.status != 404:
            raise
        ext.create_custom_resource_definition(body)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for(established, 30, "the CRD to be established")


def _create_or_replace(create: Callable[[], Any], replace: Callable[[], Any]) -> None:
    try:
        create()
    except ApiException as exc:
        if exc.status != 409:
            raise
        replace()


def install_operator_rbac(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    with contextlib.suppress(ApiException):
        core.create_namespace({"metadata": {"name": OPERATOR_NAMESPACE}})
    with contextlib.suppress(ApiException):
        core.create_namespaced_service_account(
            OPERATOR_NAMESPACE, {"metadata": {"name": OPERATOR_ACCOUNT}}
        )
    role = {
        "metadata": {"name": OPERATOR_ACCOUNT},
        "rules": yaml.safe_load(RBAC_RULES_FILE.read_text()),
    }
    _create_or_replace(
        lambda: rbac.create_cluster_role(role),
        lambda: rbac.replace_cluster_role(OPERATOR_ACCOUNT, role),
    )
    binding = {
        "metadata": {"name": OPERATOR_ACCOUNT},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": OPERATOR_ACCOUNT,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NAMESPACE}
        ],
    }
    _create_or_replace(
        lambda: rbac.create_cluster_role_binding(binding),
        lambda: rbac.replace_cluster_role_binding(OPERATOR_ACCOUNT, binding),
    )


def service_account_kubeconfig(out: Path) -> Path:
    subprocess.run(
        ["bash", str(SA_KUBECONFIG_SCRIPT), OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, str(out)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return out


# --- the operator process ------------------------------------------------------------


class OperatorProcess:
    """The real operator, started and stopped like a pod would be."""

    def __init__(
        self, kubeconfig: Path, log_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.kubeconfig = kubeconfig
        self.extra_env = extra_env or {}
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> None:
        exe = require_tool(
            "modeldeploy-operator", "run the tests through `make test` (it installs the package)"
        )
        self.starts += 1
        env = {**os.environ, **self.extra_env, "KUBECONFIG": str(self.kubeconfig)}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [exe, "--verbose"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(
            lambda: self._alive() and self._logged_start(),
            30,
            f"the operator to start (log: {self.log_path})",
        )

    def _alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            tail = self.log_path.read_text()[-3000:] if self.log_path.exists() else ""
            raise AssertionError(f"the operator exited:\n{tail}")
        return True

    def _logged_start(self) -> bool:
        # kopf reports each startup activity once it has run.
        return "'configure' succeeded" in self.log_path.read_text()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("operator-*.log")))


# --- the stand-in kubelet ------------------------------------------------------------


class FakeKubelet:
    """Marks pods Running and Ready via the status subresource, like a kubelet."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.hold: set[str] = set()  # revisions whose pods stay unready
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FakeKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(ApiException):
                self._mark_all()
            self._stop.wait(0.2)

    def _mark_all(self) -> None:
        pods = self.core.list_namespaced_pod(self.namespace).items
        for pod in pods:
            revision = (pod.metadata.labels or {}).get("modeldeploy.dev/revision")
            if revision in self.hold or pod.metadata.deletion_timestamp:
                continue
            conditions = (pod.status.conditions if pod.status else None) or []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                continue
            self.core.patch_namespaced_pod_status(
                pod.metadata.name, self.namespace, ready_status(pod)
            )


def ready_status(pod: Any) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    containers = [c.name for c in pod.spec.containers]
    return {
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "startTime": now,
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": now}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": name,
                    "ready": True,
                    "restartCount": 0,
                    "image": pod.spec.containers[0].image,
                    "imageID": "",
                    "started": True,
                    "state": {"running": {"startedAt": now}},
                }
                for name in containers
            ],
        }
    }


# --- ModelDeployment helpers --------------------------------------------------------


def unique_name(prefix: str = "md") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def model_deployment(name: str, version: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": f"https://models.example/{version}.onnx", "version": version},
            **spec,
        },
    }
    return body


@contextlib.contextmanager
def operator_running(
    api: client.ApiClient, tmp: Path, extra_env: dict[str, str] | None = None
) -> Iterator[OperatorProcess]:
    install_crd(api)
    install_operator_rbac(api)
    kubeconfig = service_account_kubeconfig(tmp / "operator.kubeconfig")
    process = OperatorProcess(kubeconfig, tmp, extra_env)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        sys.stdout.write(f"\noperator logs in {tmp}\n")


class Cluster:
    """Small readers over the API for one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)

    def apply(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        try:
            current = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.ns, PLURAL, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)
            return
        # Replace the whole spec, as applying a new manifest from Git does.
        current["spec"] = body["spec"]
        self.custom.replace_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name, current)

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def replicas(self, name: str) -> dict[str, int]:
        items = self.apps.list_namespaced_deployment(
            self.ns, label_selector=f"app.kubernetes.io/name={name}"
        ).items
        return {d.metadata.labels["modeldeploy.dev/revision"]: d.spec.replicas for d in items}

    def deployment(self, name: str) -> Any:
        return self.apps.read_namespaced_deployment(name, self.ns)

    def pod_uids(self, revision: str) -> set[str]:
        pods = self.core.list_namespaced_pod(
            self.ns, label_selector=f"modeldeploy.dev/revision={revision}"
        ).items
        return {p.metadata.uid for p in pods if not p.metadata.deletion_timestamp}

    def event_reasons(self, name: str) -> list[str]:
        events = self.core.list_namespaced_event(
            self.ns,
            field_selector=f"involvedObject.kind=ModelDeployment,involvedObject.name={name}",
        ).items
        return [e.reason for e in sorted(events, key=lambda e: e.metadata.creation_timestamp)]

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            # Replace, never merge: a field status drops (canaryRevision at
            # promotion) must not linger from an earlier poll.
            seen.clear()
            seen.update(self.status(name))
            return dict(seen) if seen.get("phase") == phase else None

        try:
            return wait_for(reached, timeout, f"{name} to reach phase {phase}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last status: {seen}") from None


def revision(body: dict[str, Any]) -> str:
    """The revision the operator will compute for a manifest."""
    return revision_of(ModelDeploymentSpec.model_validate(body["spec"]))


class MetadataServer:
    """Answers ``GET /<namespace>/<service>/v2/models/<model>`` with registered contracts.

    There is no cluster DNS here, so the operator is told to reach revision
    Services through this server (``MODELDEPLOY_SERVICE_URL``) for the
    contract check; tests register what each revision's bento would answer.
    """

    def __init__(self) -> None:
        self.contracts: dict[str, dict[str, Any]] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                body = server.contracts.get("/".join(parts[:2])) if len(parts) >= 5 else None
                payload = json.dumps(body or {"error": "no such model"}).encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                del args

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url_template(self) -> str:
        return f"http://127.0.0.1:{self.port}/{{namespace}}/{{service}}"

    def register(self, namespace: str, service: str, contract: dict[str, Any]) -> None:
        self.contracts[f"{namespace}/{service}"] = contract

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
