# Development entry points for the spdk.storage collection.
# `make test` is what CI runs (.ci/run); every target installs what it needs
# into .venv first, from the pinned versions in requirements/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Interpreter that creates the venv (Python 3.11, as ansible-core 2.19 and
# `ansible-test sanity --python 3.11` expect).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.spdk-storage-requirements
REQUIREMENTS := requirements/dev.txt requirements/constraints.txt

# Extra arguments: make unit PYTEST_ARGS="-k disk -x", make sanity SANITY_ARGS="--test pep8"
PYTEST_ARGS ?=
SANITY_ARGS ?=
LINT_ARGS ?=

# Recipes and the scripts they call use the venv's tools. Ansible's interpreter
# discovery picks a broken pyenv shim on some machines: name the interpreter.
override export VENV := $(abspath $(VENV))
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_PYTHON_INTERPRETER ?= $(VENV)/bin/python

.PHONY: help venv unit emulator integration multihost molecule sanity lint build test test-real test-real-ci demo changelog constraints clean distclean

help:
	@echo "make venv         create .venv with the pinned tools (requirements/)"
	@echo "make test         everything CI runs: unit emulator integration multihost lint changelog build sanity molecule"
	@echo "make test-real    integration suites, Molecule three_nodes and demo on real SPDK (SPDK_TGT or ../shared/spdk)"
	@echo "make test-real-ci the real-target subset CI runs (each playbook and module family once)"
	@echo "make unit         pytest tests/unit"
	@echo "make emulator     pytest tests/emulator (the SPDK emulator's own tests)"
	@echo "make integration  pytest tests/integration (modules against the emulator, or SPDK_TGT)"
	@echo "make multihost    the playbooks over SSH on one-host-per-node namespaces (scripts/multihost.sh; root)"
	@echo "make molecule     Molecule scenarios in extensions/molecule"
	@echo "make sanity       ansible-test sanity on a private copy in .cache/sanity.*"
	@echo "make lint         ansible-lint, production profile"
	@echo "make build        build + install the artifact, ansible-doc every module and role"
	@echo "make demo         run playbooks/demo.yml against emulated nodes"
	@echo "make changelog    check changelogs/fragments (antsibull-changelog lint)"
	@echo "make clean        remove .cache and test output; distclean also removes .venv"

venv: $(VENV_STAMP)

# The stamp is newer than the requirement files once they are installed, so a
# second `make venv` does nothing; editing a pin reinstalls.
$(VENV_STAMP): $(REQUIREMENTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements/dev.txt -c requirements/constraints.txt
	@touch $@

unit: venv
	scripts/pytest_suite.sh tests/unit $(PYTEST_ARGS)

emulator: venv
	scripts/pytest_suite.sh tests/emulator $(PYTEST_ARGS)

integration: venv
	scripts/pytest_suite.sh tests/integration $(PYTEST_ARGS)

# Every node its own host: a mount namespace and an sshd each (scripts/multihost.sh), Ansible over SSH.
multihost: venv
	scripts/collection_link.sh
	scripts/pytest_suite.sh tests/multihost $(PYTEST_ARGS)

molecule: venv
	scripts/molecule.sh

sanity: venv
	scripts/sanity.sh $(SANITY_ARGS)

# ansible-lint checks module arguments only when it can load the collection.
lint: venv
	scripts/collection_link.sh
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.cache/collections $(BIN)/ansible-lint $(LINT_ARGS)

build: venv
	scripts/build.sh

# Fast checks first, so a broken unit test fails in seconds.
test: unit emulator integration multihost lint changelog build sanity molecule

# Real SPDK instead of the emulator (scripts/real_spdk.sh finds it and proves it runs here).
test-real: venv
	scripts/test_real.sh all

test-real-ci: venv
	scripts/test_real.sh ci

demo: venv
	scripts/demo.sh

# Checks the fragments; releasing is a maintainer step (see CONTRIBUTING.md).
changelog: venv
	$(BIN)/antsibull-changelog lint

# Re-pin the full dependency set after changing requirements/dev.txt: resolve
# dev.txt alone in a private scratch venv (removed on exit, so two runs do not
# share one), so nothing installed by hand leaks in. One shell for the trap.
constraints:
	@mkdir -p .cache
	scratch="$$(mktemp -d .cache/constraints-venv.XXXXXX)"; \
	new="$$(mktemp requirements/constraints.txt.XXXXXX)"; \
	trap 'rm -rf "$$scratch" "$$new"' EXIT; \
	$(PYTHON) -m venv "$$scratch"; \
	"$$scratch/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt; \
	{ sed -n '1,2p' requirements/constraints.txt; \
	  "$$scratch/bin/python" -m pip freeze --exclude-editable; } > "$$new"; \
	chmod 644 "$$new"; \
	mv "$$new" requirements/constraints.txt

clean:
	rm -rf .cache tests/output .pytest_cache
	find . -path ./$(notdir $(VENV)) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
