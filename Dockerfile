# flipkart-api image: multi-stage, non-root, health-checked.
# No "# syntax=" line on purpose: it would make BuildKit pull a frontend image.
ARG PYTHON_IMAGE=python:3.13-slim

# ---- builder: the locked dependencies in a virtual environment -------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# Dependencies first: a code-only change reuses this layer and rebuilds in seconds.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --upgrade pip==26.3 && pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
    && python -m pip uninstall --yes pip setuptools \
    && python -m compileall -q /opt/venv/lib

# ---- runtime ----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/flipkart-api/flipkart-api
LABEL org.opencontainers.image.title="flipkart-api" \
      org.opencontainers.image.description="Storefront API: Flask on granian, PostgreSQL, Redis" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    PORT=5000
# A fixed, unprivileged identity: volumes and Kubernetes securityContext can rely on it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app
# Code and dependencies stay owned by root (the app cannot rewrite itself); only the
# instance directory (the SQLite file when no DATABASE_URL is given) belongs to the app.
COPY --from=builder --chown=root:root /opt/venv /opt/venv
RUN install -d -o app -g app /app/instance
USER 10001:10001
EXPOSE 5000
# Plain stdlib, ~30 ms: importing the whole app (as `flipkart-api healthcheck` does) takes
# over a second on a busy host, which is how healthy replicas get marked unhealthy.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '5000'), timeout=2)"]
# exec form: `serve` execs granian, which becomes PID 1 and receives SIGTERM directly.
CMD ["flipkart-api", "serve"]
