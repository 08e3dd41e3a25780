# syntax=docker/dockerfile:1
# The storeplatform image: web (default), Celery worker and beat, and the
# migrate Job all run from it (charts/platform sets each command). It carries
# helm, kubectl, the store charts (/app/charts) and their values profiles
# (/app/deploy/values). No secret is baked in: every secret arrives at run
# time as an environment variable or a *_FILE.
#
#   docker build -t storeplatform:dev .

# Pinned base image. Bump deliberately (and add @sha256:<digest> when your
# registry policy asks for digests).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- helm and kubectl --------------------------------------------------------
FROM ${PYTHON_IMAGE} AS tools
# Set by BuildKit; the legacy builder leaves it empty, which means amd64.
ARG TARGETARCH
# Official release builds, used for architectures the amd64-only installer
# below cannot serve (arm64 laptops). Their checksums come from the same
# official servers: this catches corruption, not a compromised origin.
ARG HELM_VERSION=v4.3.1
ARG KUBECTL_VERSION=v1.37.1
WORKDIR /src
COPY scripts/install-tools.sh scripts/install-tools.sh
RUN set -eux; \
    TARGETARCH="${TARGETARCH:-amd64}"; \
    if [ "$TARGETARCH" = "amd64" ]; then \
        # Same binaries as development and CI, from a wheel whose sha256 is
        # pinned in the script.
        TOOLS_DIR=/opt/tools bash scripts/install-tools.sh; \
    else \
        apt-get update; \
        apt-get install -y --no-install-recommends ca-certificates curl; \
        mkdir -p /opt/tools/bin; cd /tmp; \
        curl -fsSLO "https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz"; \
        curl -fsSLO "https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz.sha256sum"; \
        sha256sum --check "helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz.sha256sum"; \
        tar -xzf "helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz"; \
        install -m 0755 "linux-${TARGETARCH}/helm" /opt/tools/bin/helm; \
        curl -fsSLO "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl"; \
        echo "$(curl -fsSL "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256")  kubectl" | sha256sum --check; \
        install -m 0755 kubectl /opt/tools/bin/kubectl; \
    fi; \
    /opt/tools/bin/helm version --short; \
    /opt/tools/bin/kubectl version --client

# --- PostgreSQL 16 client tools (store backups, issue 12) ------------------------
# Medusa backups run pg_dump, pg_restore and psql from this image against the
# store's PostgreSQL 16. Debian bookworm ships client 15, which refuses to
# dump a 16 server, and the PGDG apt repository is not reachable from every
# build network; the pgserver wheel on PyPI carries PostgreSQL 16 builds with
# libpq vendored (the same binaries the test suite runs). Only its three
# client tools are kept, in the wheel's layout (their RUNPATH is relative).
FROM ${PYTHON_IMAGE} AS pgclient
ARG TARGETARCH
RUN set -eux; \
    mkdir -p /opt/pgclient/bin; \
    if [ "${TARGETARCH:-amd64}" = "amd64" ]; then \
        echo "pgserver==0.1.4 --hash=sha256:d595789b47624a3d963aa9aa6359da9be31beb7e61f1a45541953242068b8813" > /tmp/pgserver.txt; \
        python -m pip download --no-deps --require-hashes -d /tmp/wheel -r /tmp/pgserver.txt; \
        python -m zipfile -e /tmp/wheel/pgserver-*.whl /tmp/pgserver; \
        mkdir -p /opt/pgclient/pgserver/pginstall/bin; \
        cp -r /tmp/pgserver/pgserver.libs /opt/pgclient/; \
        for tool in pg_dump pg_restore psql; do \
            install -m 0755 "/tmp/pgserver/pgserver/pginstall/bin/$tool" /opt/pgclient/pgserver/pginstall/bin/; \
            ln -s "../pgserver/pginstall/bin/$tool" "/opt/pgclient/bin/$tool"; \
        done; \
        chmod 0755 /opt/pgclient/pgserver.libs; chmod 0644 /opt/pgclient/pgserver.libs/*; \
        /opt/pgclient/bin/pg_dump --version; \
    else \
        # No such wheel for this architecture: Medusa backups then fail with
        # "pg_dump: command not found" (charts/medusa/README.md, "Backups").
        echo "no PostgreSQL 16 client tools for ${TARGETARCH}"; \
    fi

# --- Python dependencies -------------------------------------------------------
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --require-virtualenv -r /tmp/requirements.txt

# --- runtime -----------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# HOME and helm's caches live in /tmp: the chart mounts an emptyDir there and
# keeps the root filesystem read-only.
ENV PATH=/opt/venv/bin:/opt/pgclient/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HELM_CACHE_HOME=/tmp/helm/cache \
    HELM_CONFIG_HOME=/tmp/helm/config \
    HELM_DATA_HOME=/tmp/helm/data \
    HELM_BIN=/usr/local/bin/helm \
    STORE_CHARTS_DIR=/app/charts \
    STORE_VALUES_DIR=/app/deploy/values

# Store backups (issue 12, charts/*/templates/backup.yaml run this image):
# WooCommerce's mariadb-dump and mariadb client (Debian's 10.11; the store's
# server is MariaDB 11.4, which the tests here cannot run: only 10.11 servers
# are tested), and the PostgreSQL 16 tools from the pgclient stage. bash, tar
# and gzip are in the base.
RUN apt-get update \
    && apt-get install -y --no-install-recommends mariadb-client \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
COPY --from=pgclient /opt/pgclient /opt/pgclient

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin app

COPY --from=tools /opt/tools/bin/helm /opt/tools/bin/kubectl /usr/local/bin/
COPY --from=deps /opt/venv /opt/venv

WORKDIR /app
COPY --chown=root:root . /app

# Static files are collected at build time into /app/staticfiles. The key is
# a throwaway that only lets settings import; it is not kept in the image's
# environment and signs nothing.
RUN DJANGO_SECRET_KEY=collectstatic-build-only STORE_CREDENTIALS_KEY=collectstatic-build-only \
    DJANGO_DEBUG=false python manage.py collectstatic --noinput \
    && python -m compileall -q /app

USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "storeplatform.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-tmp-dir", "/tmp", "--access-logfile", "-"]
