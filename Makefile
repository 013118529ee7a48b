# Two ways in (see README): `make up` for the laptop VM, `make test` for the whole suite.
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup up test lint testbed bench ee collection

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	mkdir -p .collections/ansible_collections/provision
	ln -sfn ../../.. .collections/ansible_collections/provision/hosts
	touch $@

setup: $(VENV)/.installed

up: setup
	provision up

test: setup
	scripts/test

lint: setup
	scripts/test lint

testbed: setup
	python -m testbed up

bench: setup
	python -m bench

# The execution environment image (execution-environment.yml); e.g. make ee EE_TAG=registry/ee:1
# EE_ARGS='--build-arg EE_BASE_IMAGE=...' for another base image (ansible-builder build options).
EE_TAG ?= provision-hosts-ee:latest
ee: setup
	scripts/ee build --tag $(EE_TAG) $(EE_ARGS)

# The collection's release tarball (README at its root, as Galaxy imports it) into dist/.
collection: setup
	python scripts/collection dist
