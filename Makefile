# crpbot-ansible: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The sandbox vault's password (test only): real runs use --ask-vault-pass or their own file.
export ANSIBLE_VAULT_PASSWORD_FILE := $(CURDIR)/tests/sandbox/vault-password
SANDBOX := $(CURDIR)/.testbed/inventory/sandbox.crpbot.yml
SCENARIO ?= e2e

.PHONY: help setup demo demo-down lint unit test molecule

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.synced  ## Create .venv from uv.lock (installs uv with pip when missing)

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	uv sync --frozen
	@touch $@

demo: setup  ## Bring up the sandbox hosts and converge them with site.yml, twice (the second run shows changed=0)
	python -m tests.testbed up
	ansible-playbook -i $(SANDBOX) site.yml --diff
	ansible-playbook -i $(SANDBOX) site.yml

demo-down:  ## Remove the sandbox hosts and services
	python -m tests.testbed down

lint: setup  ## yamllint and ansible-lint (production profile)
	yamllint --strict .
	ansible-lint

unit: setup  ## Unit tests only (no test bed)
	pytest tests/unit

test: lint  ## Every test: lint, unit tests, integration tests and every molecule scenario
	pytest

molecule: setup  ## Run one molecule scenario: make molecule SCENARIO=amazon_q
	molecule test -s $(SCENARIO)
