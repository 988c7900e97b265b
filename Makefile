# modelstats: `make run` starts the local stack, `make test` proves it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast test-js lint format bench image-test images deploy undeploy minikube clean

install: $(STAMP)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/modelstats run $(ARGS)

test: install test-js
	$(BIN)/pytest $(PYTEST_ARGS)

# The tests that start no process and no PostgreSQL (well under 30 s).
test-fast: install test-js
	$(BIN)/pytest -m "not slow and not postgres" $(PYTEST_ARGS)

# The dashboard's pure modules under node's own test runner: no npm package, no browser (Node
# 20.19 or later, which reads their .js files as the ES modules they are).
test-js:
	@command -v node >/dev/null || { echo "test-js: needs node (20.19 or later)" >&2; exit 1; }
	node --test --test-reporter=dot tests/stats/dashboard/

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench $(ARGS)

# The four images of infra/Dockerfile built with podman (as root; no registry, no Docker) and
# smoke-tested against a throwaway PostgreSQL. Not part of `make test`. ARGS=--no-cache rebuilds
# everything; the base and layers are cached under ~/.cache/modelstats-images
# (MODELSTATS_IMAGES_CACHE).
image-test: install
	$(BIN)/python infra/images.py build $(ARGS)
	MODELSTATS_IMAGE_TEST=1 $(BIN)/python -m pytest tests/images $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .modelstats .pytest_cache .mypy_cache .ruff_cache

# --- Kubernetes: minikube + Knative (infra/README.md "Deploy to minikube"; nothing here runs in CI) ---
MINIKUBE_PROFILE ?= knative
IMAGE_TAG        ?= latest
FUNCTIONS        := ingest stats alert etl

# Builds into minikube's Docker daemon, so no registry is needed; the dev.local/ prefix tells
# Knative not to resolve the tags to digests (it could not: the images are in no registry).
images:
	eval "$$(minikube --profile $(MINIKUBE_PROFILE) docker-env)" && \
	for function in $(FUNCTIONS); do \
		docker build -f infra/Dockerfile --build-arg FUNCTION=$$function \
			-t dev.local/modelstats-$$function:$(IMAGE_TAG) . || exit 1; \
	done

deploy:
	IMAGE_TAG=$(IMAGE_TAG) infra/deploy.sh

undeploy:
	infra/undeploy.sh $(ARGS)

minikube:
	MINIKUBE_PROFILE=$(MINIKUBE_PROFILE) infra/minikube.sh
