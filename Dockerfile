# syntax=docker/dockerfile:1
# momo-gateway: one image for the web process (the default command), the worker, migrations
# and the MTN simulator. docs/operations.md explains how to run it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the virtualenv and the compressed, hashed static files ---------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# Settings refuse development secrets with DEBUG off; collectstatic uses none of them, so it
# gets throwaway values that exist only for this one command (never in the image's ENV).
RUN DEBUG=false SECRET_KEY=collectstatic-only-not-a-secret \
    MTN_COLLECTION_SUBSCRIPTION_KEY=build MTN_COLLECTION_API_USER=build MTN_COLLECTION_API_KEY=build \
    MTN_DISBURSEMENT_SUBSCRIPTION_KEY=build MTN_DISBURSEMENT_API_USER=build \
    MTN_DISBURSEMENT_API_KEY=build MTN_WEBHOOK_SECRET=build \
    FIELD_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1zZWNyZXQtMzItYnl0ZXM= \
    python manage.py collectstatic --noinput \
    && python -m compileall -q /app

# --- runtime: no compilers, no pip cache, not root ------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=gateway.settings \
    DEBUG=false \
    PORT=8000
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
# The code belongs to root and is read-only for the process that runs it.
COPY --from=build /app /app
WORKDIR /app
# Numeric, so that Kubernetes runAsNonRoot can tell it is not root.
USER 10001:10001
EXPOSE 8000
# /healthz answers 200 while the process runs. Django checks the Host header, so ask with the
# first ALLOWED_HOSTS entry ("*" or a ".domain" wildcard are turned into a usable name).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = os.environ.get('ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('*.') or 'localhost'; u.urlopen(u.Request('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), headers={'Host': h}), timeout=4)"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "gateway.wsgi"]
