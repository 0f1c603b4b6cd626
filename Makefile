# Every target does its own setup, so each works on a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COLLECTIONS := build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/progressive/delivery
export PYTHONPATH := $(CURDIR)/$(COLLECTIONS):$(CURDIR)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(COLLECTIONS)
export ANSIBLE_NOCOLOR := 1
export NO_COLOR := 1
export ANSIBLE_PYTHON_INTERPRETER := $(CURDIR)/$(BIN)/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1
MODULES := $(basename $(notdir $(wildcard plugins/modules/*.py)))
PYTEST_ARGS ?=

.PHONY: help setup venv collection prometheus test unit integration molecule lint ansible-lint sanity docs-check \
        changelog-lint build controlplane static-checks demo lab-up lab-down lab-status clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(STAMP) ## Create .venv with the pinned development dependencies

$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../../.. $@

collection: $(COLLECTION_LINK) ## Make the checkout visible to Ansible as progressive.delivery

prometheus: ## Install Prometheus and its Pushgateway from the OS packages when they are missing
	@missing=""; \
	command -v prometheus >/dev/null 2>&1 || missing="prometheus"; \
	command -v prometheus-pushgateway >/dev/null 2>&1 || missing="$$missing prometheus-pushgateway"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  echo "Installing$$missing with apt-get"; \
	  $$SUDO apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "Missing:$$missing: install the Prometheus server and Pushgateway packages with your OS package manager (they must be on PATH)." >&2; \
	  exit 1; \
	fi

setup: venv collection prometheus ## Everything the tests and the demo need

test: ## Unit tests, lint, then integration tests and Molecule on the lab's real control plane
	@# The control plane compiles (about 16 minutes the first time) while the Python side is set up and checked.
	$(MAKE) --no-print-directory -j2 controlplane static-checks
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory molecule

static-checks: setup
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory lint

unit: venv collection ## Unit tests only
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

integration: setup controlplane ## Integration tests against the lab on the real control plane (starts its own)
	@# Two workers, each with a lab of its own: the tests wait on clocks more than they compute.
	LAB_BACKEND=cluster $(BIN)/pytest tests/integration -q -n 2 --dist worksteal $(PYTEST_ARGS)

molecule: setup controlplane ## The role's Molecule scenario on the lab's real control plane (good and bad release)
	LAB_BACKEND=cluster PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/molecule test -s default

lint: ansible-lint sanity docs-check changelog-lint ## ansible-lint (production), ansible-test sanity, docs render

ansible-lint: venv collection
	$(BIN)/ansible-lint --offline --profile production

sanity: venv collection
	VENV_BIN=$(CURDIR)/$(BIN) scripts/sanity.sh

docs-check: venv collection ## ansible-doc renders every module
	@for module in $(MODULES); do \
	  $(BIN)/ansible-doc progressive.delivery.$$module >/dev/null || { echo "ansible-doc failed for $$module" >&2; exit 1; }; \
	  echo "ansible-doc progressive.delivery.$$module: ok"; \
	done

changelog-lint: venv
	$(BIN)/antsibull-changelog lint

build: venv ## Build the collection tarball into build/
	$(BIN)/ansible-galaxy collection build --force --output-path build .

controlplane: ## Build kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok from pinned upstream sources
	@command -v go >/dev/null || { echo "Building the lab's control plane needs a Go toolchain (go) on PATH." >&2; exit 1; }
	lab/controlplane/build.sh build/controlplane 2>&1 | sed -u 's/^/[controlplane] /'

demo: setup ## Run the main job on the local lab
	@if [ ! -f playbooks/demo.yml ]; then \
	  echo "The demo needs the canary role, which is not in this version yet." >&2; exit 1; fi
	@if [ ! -x build/controlplane/bin/kube-apiserver ]; then \
	  echo "The lab's real control plane is not built yet: this demo runs on the lab's Kubernetes API emulator."; \
	  echo "'make controlplane' builds it from pinned upstream sources (about 16 minutes the first time on 2 cores);"; \
	  echo "the next 'make demo' then runs on it."; fi
	$(BIN)/python -m lab up
	ANSIBLE_CONFIG=examples/ansible.cfg $(BIN)/ansible-playbook -i localhost, -c local playbooks/demo.yml; status=$$?; \
	  $(BIN)/python -m lab down; exit $$status

lab-up: setup ## Start the lab in the background (idempotent)
	$(BIN)/python -m lab up

lab-down: venv ## Stop the lab, leaving no process behind
	$(BIN)/python -m lab down

lab-status: venv ## Show the lab's endpoints and health
	$(BIN)/python -m lab status

clean: ## Remove build output (keeps .venv)
	rm -rf build .pytest_cache
