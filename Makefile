# celery_ops.lean_results — everything a developer or CI runs.
# `make demo` and `make test` set themselves up on a fresh machine (venv, pip packages, redis-server).

SHELL := /bin/bash
# The newest ansible-core (2.21) on the newest Python found (3.13, else 3.12); where only 3.11
# exists, ansible-core 2.19 (the newest that installs on it). pyenv shims are skipped: see the script.
PYTHON ?= $(shell scripts/find-python.sh)
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
CORE ?= $(if $(filter 3.8 3.9 3.10 3.11,$(PYTHON_VERSION)),2.19,2.21)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-core$(CORE)-py$(PYTHON_VERSION)
# make test-servers: the directory of server tarballs (Redis 6.2, 7.2, Valkey 8) and the cache
SERVERS_SRC ?= $(CURDIR)/../shared/servers
TEST_SERVERS_DEFAULT ?= yes
PYTEST_WORKERS ?= 2
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.ansible/collections
export ANSIBLE_PYTHON_INTERPRETER := $(CURDIR)/$(VPY)

.PHONY: help setup versions redis-server chromium test pytest unit integration sanity lint molecule demo bench build \
	changelog clean test-matrix test-servers servers

help:
	@echo "make demo   - the whole job on an embedded default (local Redis, Celery app, workload)"
	@echo "make test   - every test: pytest (unit + integration), ansible-test sanity, ansible-lint, molecule"
	@echo "make bench  - benchmarks, figures in bench/results.json"
	@echo "make test-matrix  - unit + ansible-test sanity + smoke test on ansible-core 2.19, 2.20, 2.21"
	@echo "make test-servers SERVERS_SRC=DIR  - the integration suite on Redis 6.2, 7.2 and Valkey 8 built from DIR"

$(STAMP): requirements/test.txt
	@test -n "$(PYTHON_VERSION)" || { echo "no usable Python found (scripts/find-python.sh)" >&2; exit 1; }
	@if [ -x $(VPY) ] && [ "$$($(VPY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYTHON_VERSION)" ]; then \
	  echo "$(VENV) runs another Python: recreating it with $(PYTHON)"; rm -rf $(VENV); fi
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r requirements/test.txt "ansible-core==$(CORE).*"
	@rm -f $(VENV)/.installed*
	@touch $@

setup: $(STAMP) redis-server chromium collection-link versions

# Say what runs the tests; say it loudly when Python 3.12+ is missing and 2.19 stands in for 2.21.
versions: $(STAMP)
	@if [ "$(CORE)" = 2.19 ]; then \
	  echo "NOTE: no Python 3.12+ found: falling back to ansible-core 2.19 on Python $(PYTHON_VERSION)"; fi
	@echo "ansible-core $$($(VPY) -c 'import ansible; print(ansible.__version__)') on Python $$($(VPY) -c 'import platform; print(platform.python_version())') ($(PYTHON)), redis-py $$($(VPY) -c 'import redis; print(redis.__version__)'), $$(redis-server --version 2>/dev/null | cut -d' ' -f1-3)"

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
	@echo "make test: all passed (ansible-core $(CORE), Python $(PYTHON_VERSION))"

pytest: setup
	$(VPY) -m pytest -n $(PYTEST_WORKERS) -p no:cacheprovider tests/unit tests/integration

unit: setup
	$(VPY) -m pytest -p no:cacheprovider tests/unit

integration: setup
	$(VPY) -m pytest -n $(PYTEST_WORKERS) -p no:cacheprovider tests/integration

sanity: setup
	scripts/ansible-test.sh sanity --venv --python $(PYTHON_VERSION)

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

# 3 ansible-core lines x (unit, ansible-test sanity, smoke); one cached venv per core under
# ~/.cache/lean_results/venvs/ (redis-py 4.6 with 2.19, redis-py 8 with 2.21).
test-matrix: redis-server
	scripts/test-matrix.sh

# Build the server tarballs once (~/.cache/lean_results/servers/<sha256>/), print the binaries.
servers:
	scripts/build-servers.sh $(SERVERS_SRC)

# The integration suite on every server of the matrix (scripts/test-servers.sh says which subset).
test-servers: setup
	LEAN_RESULTS_VENV=$(CURDIR)/$(VENV) TEST_SERVERS_DEFAULT=$(TEST_SERVERS_DEFAULT) scripts/test-servers.sh $(SERVERS_SRC)

clean:
	rm -rf build tests/output .ansible .pytest_cache
