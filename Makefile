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
# uv from PATH, else installed with pip into a venv of its own (Debian 12's python3 refuses a system pip install).
UV_TOOL := $(CURDIR)/.tools/uv/bin/uv
UV := $(or $(shell command -v uv 2>/dev/null),$(UV_TOOL))
SCENARIO ?= e2e
# pytest-xdist workers for `make test`: every test file runs whole in one worker (--dist loadfile), and every
# integration module brings up a test bed of its own, so files run side by side. 1 = no workers.
TEST_JOBS ?= 2

.PHONY: help deps setup demo demo-down lint unit test molecule

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

deps:  ## Install the missing Debian packages of tests/testbed/debian-packages.txt (as root, or through sudo)
	@bash tests/testbed/install-debian-packages

setup: $(VENV)/.synced  ## Create .venv from uv.lock (installs uv into .tools/uv when it is not on PATH)

# --compile-bytecode: every package's .pyc written once here. Without it, a machine that sets
# PYTHONDONTWRITEBYTECODE (CI containers often do) compiles Ansible's sources again in every
# ansible-playbook start: 1.7 s against 0.65 s to import ansible-playbook and boto3 on the 2-core machine.
$(VENV)/.synced: pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

$(UV_TOOL):
	python3 -m venv $(CURDIR)/.tools/uv
	$(CURDIR)/.tools/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

demo: deps setup  ## Bring up the sandbox hosts and converge them with site.yml, twice (the second run shows changed=0)
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

test: deps lint  ## Every test: lint, unit tests, integration tests and every molecule scenario (TEST_JOBS=2 in parallel)
	pytest $(if $(filter-out 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile)

molecule: deps setup  ## Run one molecule scenario: make molecule SCENARIO=amazon_q
	molecule test -s $(SCENARIO)
