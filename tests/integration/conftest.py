"""Fixtures for integration tests against the local control plane.

The control plane (etcd, kube-apiserver, kube-controller-manager) is started by
``make cluster-up`` (``tools/cluster/up.sh``), which writes an admin kubeconfig
to ``.local/kubeconfig``. These fixtures always use that file and never
``$KUBECONFIG``: a developer's shell may point at a real cluster, and tests
create and delete namespaces.

- ``kubeconfig``: the path of the admin kubeconfig; fails the test (never
  skips) when the control plane is not running.
- ``k8s_api``: a session-wide ``kubernetes.client.ApiClient`` for it. Build API
  objects from it, e.g. ``client.CoreV1Api(k8s_api)``.
- ``namespace``: a fresh namespace per test, with its ``default``
  ServiceAccount in place (so pods can be created at once), deleted afterwards.
- ``sa_kubeconfig``: ``sa_kubeconfig(namespace, name) -> Path`` writes a
  kubeconfig that authenticates as that existing ServiceAccount (the operator
  runs under its own least-privilege account this way: pass the file to it).
- ``sa_api_client``: ``sa_api_client(namespace, name) -> ApiClient``, the same
  identity as an in-process client (closed after the test).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client import ApiException

from md_env import Cluster, FakeKubelet, MetadataServer, OperatorProcess, operator_running

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_KUBECONFIG = REPO_ROOT / ".local" / "kubeconfig"
SA_KUBECONFIG_SCRIPT = REPO_ROOT / "tools" / "cluster" / "sa-kubeconfig.sh"
NOT_RUNNING = "local control plane not running: run `make cluster-up`"
TEST_NAMESPACE_LABEL = "modeldeploy.dev/test"

SaKubeconfigFactory = Callable[[str, str], Path]
SaApiClientFactory = Callable[[str, str], client.ApiClient]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration so `-m "not integration"` works."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


def api_client_from(path: Path) -> client.ApiClient:
    """An ApiClient with its own configuration (the global one stays untouched)."""
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(path)
    )
    return api


def close_api(api: client.ApiClient) -> None:
    """Closes the client's connection pool (and its thread pool, if any)."""
    api.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """The admin kubeconfig of the local control plane, checked to answer."""
    if not LOCAL_KUBECONFIG.is_file():
        pytest.fail(f"{NOT_RUNNING} (no {LOCAL_KUBECONFIG})", pytrace=False)
    api = api_client_from(LOCAL_KUBECONFIG)
    try:
        client.VersionApi(api).get_code(_request_timeout=5)
    except Exception as exc:  # any failure to answer means the same to the user
        pytest.fail(f"{NOT_RUNNING} ({type(exc).__name__}: {exc})", pytrace=False)
    finally:
        close_api(api)
    return LOCAL_KUBECONFIG


@pytest.fixture(scope="session")
def k8s_api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """A session-wide API client authenticated as cluster admin."""
    api = api_client_from(kubeconfig)
    yield api
    close_api(api)


def _namespace_name(test_name: str) -> str:
    """A DNS-1123 label unique per call, readable back to its test."""
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].rstrip("-")
    return f"it-{base}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(k8s_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace for one test; deleted (without waiting) afterwards."""
    core = client.CoreV1Api(k8s_api)
    name = _namespace_name(request.node.name)
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "integration"})
        )
    )
    try:
        # The serviceaccount controller adds `default` within a moment; until
        # then the ServiceAccount admission plugin rejects every pod.
        deadline = time.monotonic() + 30
        while True:
            try:
                core.read_namespaced_service_account("default", name)
                break
            except ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    pytest.fail(
                        f"ServiceAccount default never appeared in namespace {name}: is "
                        "kube-controller-manager running? (see .local/cluster/logs/)"
                    )
                time.sleep(0.2)
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def sa_kubeconfig(kubeconfig: Path, tmp_path: Path) -> SaKubeconfigFactory:
    """A factory writing a kubeconfig that authenticates as a ServiceAccount.

    The ServiceAccount must exist; the token comes from the TokenRequest API.
    """
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to run tools/cluster/sa-kubeconfig.sh")

    def make(namespace: str, service_account: str) -> Path:
        out = tmp_path / f"{namespace}-{service_account}.kubeconfig"
        result = subprocess.run(
            ["bash", str(SA_KUBECONFIG_SCRIPT), namespace, service_account, str(out)],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(
                f"sa-kubeconfig.sh {namespace} {service_account} failed "
                f"(exit {result.returncode}): {result.stderr.strip()}"
            )
        return out

    return make


@pytest.fixture
def sa_api_client(sa_kubeconfig: SaKubeconfigFactory) -> Iterator[SaApiClientFactory]:
    """A factory of API clients authenticated as a ServiceAccount."""
    made: list[client.ApiClient] = []

    def make(namespace: str, service_account: str) -> client.ApiClient:
        api = api_client_from(sa_kubeconfig(namespace, service_account))
        made.append(api)
        return api

    yield make
    for api in made:
        close_api(api)


# --- the operator under test (see md_env.py) ----------------------------------------


@pytest.fixture(scope="session")
def metadata_server() -> Iterator[MetadataServer]:
    server = MetadataServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def operator(
    k8s_api: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
    metadata_server: MetadataServer,
) -> Iterator[OperatorProcess]:
    """The real operator process, shared by the tests; a test may stop and start it."""
    env = {"MODELDEPLOY_SERVICE_URL": metadata_server.url_template}
    with operator_running(k8s_api, tmp_path_factory.mktemp("operator"), env) as process:
        yield process


@pytest.fixture
def kubelet(k8s_api: client.ApiClient, namespace: str) -> Iterator[FakeKubelet]:
    with FakeKubelet(k8s_api, namespace) as fake:
        yield fake


@pytest.fixture
def cluster(k8s_api: client.ApiClient, namespace: str) -> Cluster:
    return Cluster(k8s_api, namespace)
