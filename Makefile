# momo-gateway: two commands on a fresh machine, `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-postgres lint format bench bench-capacity image-test venv migrate demo clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input -v 0

demo: migrate
	$(PY) manage.py demo_tenant

# The gateway on http://127.0.0.1:8000, two MTN markets (the sandbox, EUR, on :8001 and
# mtnuganda, UGX, on :8002, registered as the platform account `uganda`), the worker and the
# demo tenant's webhook receiver on :8003 (webhook_listen), on SQLite. MTN calls back on the
# per-payment URL, so a payment goes PENDING -> SUCCESSFUL by itself, and the receiver prints
# the signed event. The demo API key (var/demo-api-key) and the second market's credentials
# (var/mtn-uganda-credentials.json) are kept across restarts; the demo tenant is funded
# 500.00 EUR once, for payouts. The sandbox (the default account) carries EUR only, so a
# currency no account carries is refused (422 currency_not_supported) instead of failing at MTN.
run: demo
	@# Ctrl-C is how a person stops it, not an error: the recipe's shell ends quietly then.
	@trap 'exit 0' INT; \
	MTN_CALLBACK_URL=$${MTN_CALLBACK_URL:-http://127.0.0.1:8000} \
	MTN_STATUS_POLL_AFTER_SECONDS=$${MTN_STATUS_POLL_AFTER_SECONDS:-10} \
	MTN_CURRENCIES=$${MTN_CURRENCIES-EUR} \
	PYTHONUNBUFFERED=1 $(VENV)/bin/honcho -f Procfile.dev start; \
	status=$$?; [ $$status -eq 130 ] || [ $$status -eq 0 ] || exit $$status

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-postgres: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/momo_gateway} $(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/capacity.py $(CAPACITY_ARGS)

# Only the capacity scenario (issue 15: MTN answering after 0, 0.5 and 2 s, the whole cost per
# payment, a burst under MTN_RATE_LIMIT/MTN_MAX_IN_FLIGHT); a few minutes. CAPACITY_ARGS passes
# options, e.g. CAPACITY_ARGS="--seconds 10 --burst 1000".
bench-capacity: $(STAMP)
	$(PY) bench/capacity.py $(CAPACITY_ARGS)

# Builds the Dockerfile as it is and runs migrate, web, worker and the MTN simulator as
# containers (tests/image): needs root for dockerd; skips, saying why, where it cannot run.
image-test: $(STAMP)
	IMAGE_TEST=1 $(PY) -m pytest tests/image -m image -q -rs -s -p no:randomly

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache
