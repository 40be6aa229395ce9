# celery_ops.lean_results — everything a developer or CI runs.
# `make demo` and `make test` set themselves up on a fresh machine (venv, pip packages, redis-server).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.ansible/collections
export ANSIBLE_PYTHON_INTERPRETER := $(CURDIR)/$(VPY)

.PHONY: help setup redis-server chromium test pytest unit integration sanity lint molecule demo bench build changelog clean

help:
	@echo "make demo   - the whole job on an embedded default (local Redis, Celery app, workload)"
	@echo "make test   - every test: pytest (unit + integration), ansible-test sanity, ansible-lint, molecule"
	@echo "make bench  - benchmarks, figures in bench/results.json"

$(STAMP): requirements/test.txt
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r requirements/test.txt
	@touch $@

setup: $(STAMP) redis-server chromium collection-link

# Debian's redis-server when the binary is missing (root only; otherwise say what to install).
redis-server:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing redis-server (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is missing: install it (e.g. 'sudo apt-get install redis-server') and retry" >&2; exit 1; \
	  fi; \
	fi

# Headless Chromium renders the HTML report in its test (Debian package 'chromium').
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing: install it (e.g. 'sudo apt-get install chromium') and retry" >&2; exit 1; \
	  fi; \
	fi

# The collection as Ansible looks for it: .ansible/collections/ansible_collections/celery_ops/lean_results
collection-link:
	@mkdir -p .ansible/collections/ansible_collections/celery_ops
	@ln -sfn ../../../.. .ansible/collections/ansible_collections/celery_ops/lean_results

test: setup pytest sanity lint molecule
	@echo "make test: all passed"

pytest: setup
	$(VPY) -m pytest -n $(PYTEST_WORKERS) -p no:cacheprovider tests/unit tests/integration

unit: setup
	$(VPY) -m pytest -p no:cacheprovider tests/unit

integration: setup
	$(VPY) -m pytest -n $(PYTEST_WORKERS) -p no:cacheprovider tests/integration

sanity: setup
	scripts/ansible-test.sh sanity --venv --python 3.11

lint: setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint --profile production

molecule: setup
	@if [ -d extensions/molecule/default ]; then \
	  cd extensions && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ../$(VENV)/bin/molecule test -s default; \
	else echo "molecule: no scenario yet"; fi

demo: setup
	$(VPY) -m demo

bench: setup
	$(VPY) -m bench

build: setup
	$(VENV)/bin/ansible-galaxy collection build --force --output-path build/

changelog: setup
	$(VENV)/bin/antsibull-changelog lint

clean:
	rm -rf build tests/output .ansible .pytest_cache
