# Sora Studio — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run prod test lint format install install-test migrate seed web worker bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

migrate: install
	$(BIN)/python manage.py migrate --noinput

# seed_demo also writes a random simulator key to .env on a fresh install; honcho and settings read it.
seed: migrate
	$(BIN)/python manage.py seed_demo --site-url http://$(HOST):$(PORT)

## Set up everything and start web + worker on http://127.0.0.1:8000 (login demo/demo, admin admin/admin)
run: seed
	@echo "Sora Studio on http://$(HOST):$(PORT)/  (login: demo / demo, admin: admin / admin). Ctrl-C stops."
	SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} WEB_HOST=$(HOST) WEB_PORT=$(PORT) $(BIN)/honcho start

## Production profile: gunicorn (WEB_WORKERS x WEB_THREADS on WEB_BIND) + qcluster from Procfile.prod, DEBUG off,
## static files collected for whitenoise. Needs SECRET_KEY and ALLOWED_HOSTS (environment or .env); see "Scaling out".
prod: install
	DEBUG=false $(BIN)/python manage.py check --deploy --fail-level ERROR
	DEBUG=false $(BIN)/python manage.py collectstatic --noinput -v0
	DEBUG=false $(BIN)/python manage.py migrate --noinput
	@echo "Sora Studio (production profile) on $${WEB_BIND:-127.0.0.1:8000}. Ctrl-C stops."
	DEBUG=false $(BIN)/honcho -f Procfile.prod start

## Install what the tests need and run the whole suite (after the lint, format and layer checks)
test: install-test lint
	$(BIN)/python manage.py makemigrations --check --dry-run > /dev/null || (echo "Missing migrations: run manage.py makemigrations" && exit 1)
	$(BIN)/pytest

## Lint, formatting and the import contracts (pyproject.toml); `make format` fixes what can be fixed
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Benchmarks on a throw-away database (BENCH_DATABASE_URL to run them on PostgreSQL)
BENCH_DATABASE_URL ?= sqlite:///$(CURDIR)/.bench/bench.sqlite3
# The pipeline, pump and gallery benchmarks make their own throw-away databases: SQLite under .bench/, or
# PostgreSQL (created and dropped at BENCH_DATABASE_URL) + Redis (BENCH_REDIS_URL, flushed) for the pipeline.
BENCH_ON := $(if $(filter postgres%,$(BENCH_DATABASE_URL)),postgres --postgres-url $(BENCH_DATABASE_URL),sqlite)
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/14
bench: install
	mkdir -p .bench && rm -f .bench/bench.sqlite3*
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py migrate --noinput -v0
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py bench_spending --rows $${BENCH_ROWS:-1000000} --yes
	$(BIN)/python manage.py bench_pipeline --database $(BENCH_ON) --redis-url "$(BENCH_REDIS_URL)" \
		--jobs $${BENCH_JOBS:-200} --qclusters $${BENCH_QCLUSTERS:-1} --rounds $${BENCH_ROUNDS:-3}
	$(BIN)/python manage.py bench_pump --database $(BENCH_ON) --rows $${BENCH_PUMP_ROWS:-1000000}
	$(BIN)/python manage.py bench_gallery --database $(BENCH_ON) --generations $${BENCH_GALLERY_ROWS:-200000}

## The same benchmarks on small numbers: a couple of minutes, for a quick look (not for quoting)
bench-quick:
	$(MAKE) bench BENCH_ROWS=20000 BENCH_JOBS=30 BENCH_ROUNDS=1 BENCH_PUMP_ROWS=20000 BENCH_GALLERY_ROWS=5000

web: seed
	$(BIN)/python manage.py runserver $(HOST):$(PORT) --noreload
worker: migrate
	$(BIN)/python manage.py qcluster

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* media staticfiles test-results
