# modeldeploy developer entry points. Build caches live under $(HOME)/.cache,
# never in the repository, so a clean clone reuses them.
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/modeldeploy
VENV ?= $(CACHE)/venv
PY := $(VENV)/bin/python
export MODELDEPLOY_CACHE := $(CACHE)
export MODELDEPLOY_VENV := $(VENV)
export KUBECONFIG ?= $(CURDIR)/.local/kubeconfig
CRD_FILE := charts/modeldeploy/crds/modeldeploy.dev_modeldeployments.yaml
MODEL ?= .local/models/v1.onnx
PORT ?= 3000

.PHONY: help venv system-deps k8s-build test lint crd cluster-up cluster-down models serve \
        bench bench-serving bench-analysis operator

help:
	@grep -E '^[a-z-]+:' Makefile | cut -d: -f1 | sort | tr '\n' ' '; echo

venv:            ## Python virtualenv with every extra (cached, re-synced when pyproject changes)
	@tools/bootstrap-python.sh

system-deps:     ## Debian packages: etcd-server, prometheus
	@tools/bootstrap-system.sh

k8s-build:       ## kube-apiserver, kube-controller-manager, kubectl from their Go modules (cached)
	@tools/cluster/build.sh

test:            ## the whole suite: unit, integration (local control plane), serving, e2e
	@tools/test.sh

lint: venv       ## ruff, strict mypy, the import contract
	$(VENV)/bin/ruff check operator tests tools bench bentos
	$(VENV)/bin/ruff format --check operator tests tools bench bentos
	$(VENV)/bin/mypy operator/modeldeploy
	cd $(CURDIR) && $(VENV)/bin/lint-imports

crd: venv        ## regenerate the CRD from the pydantic models
	$(PY) -m modeldeploy.crdgen > $(CRD_FILE)

cluster-up: system-deps k8s-build  ## start etcd + kube-apiserver + kube-controller-manager; writes .local/kubeconfig
	@tools/cluster/up.sh

cluster-down:    ## stop everything cluster-up started
	@tools/cluster/down.sh

operator: venv   ## run the operator against .local/kubeconfig
	$(VENV)/bin/modeldeploy-operator

models: venv     ## build the sample ONNX models into .local/models (deterministic, local)
	$(PY) bentos/models/build_models.py --out .local/models

serve: venv      ## serve MODEL=path on PORT=n with the onnx-serving bento
	tools/serve.sh "$(MODEL)" "$(PORT)"

bench: bench-serving bench-analysis

bench-serving: venv models
	$(PY) bench/serving/run.py

bench-analysis: venv
	$(PY) bench/analysis/run.py
