# flipkart-api image: multi-stage, non-root, health-checked.
# No "# syntax=" line on purpose: it would make BuildKit pull a frontend image.
ARG PYTHON_IMAGE=python:3.13-slim

# ---- builder: the locked dependencies in a virtual environment, slimmed -----------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# binutils for `strip` (this stage only). Not version-pinned: the pin would tie the Dockerfile
# to one Debian release of the base image, and nothing from it reaches the runtime image.
# hadolint ignore=DL3008
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# Dependencies first: a code-only change reuses this layer and rebuilds in seconds.
# RELOAD=1 (the dev compose stack) installs the lock with granian's live reload (watchfiles);
# the production image has no use for it.
ARG RELOAD=""
COPY requirements.lock requirements-reload.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --upgrade pip==26.3 \
    && pip install --require-hashes -r "requirements${RELOAD:+-reload}.lock"
COPY pyproject.toml README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
    && python -m pip uninstall --yes pip setuptools
# Ship what serving needs (figures in docs/decisions.md, "Containers"):
# - extension modules without their symbol tables and debug sections (strip --strip-unneeded:
#   10 MB, mostly SQLAlchemy's Cython modules);
# - no test suites or pytest plugins of dependencies, no type stubs, no source maps;
# - dependencies as bytecode only: one legacy .pyc beside each module instead of the .py
#   plus a __pycache__ copy (23 MB), compiled at optimisation level 2 (-OO: no docstrings,
#   no asserts; 5.5 MB; every library here copes with a None __doc__). Their tracebacks keep
#   file names and line numbers, not the source lines. flipkart_api keeps its sources and
#   plain bytecode (its tracebacks, its docstrings in /openapi.json, the migration files);
# - one OpenSSL: psycopg-binary bundles libssl and libcrypto (6.7 MB) beside the base image's,
#   which Python's ssl and hashlib load anyway. Its libpq needs only the OpenSSL 3.0 ABI
#   (symbol version OPENSSL_3.0.0), so the bundled files become links to the base's; the
#   loader then maps one copy per process, patched with the base image. The import below fails
#   the build if a future wheel needs symbols the base's OpenSSL lacks.
RUN set -eu; \
    site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    find /opt/venv -name '*.so*' -type f -exec strip --strip-unneeded {} +; \
    for lib in libssl libcrypto; do \
        base_lib="$(python -c "import ssl; print(next(line.split()[-1] \
            for line in open('/proc/self/maps') if '/$lib.so.3' in line))")"; \
        for bundled in "$site"/psycopg_binary.libs/"$lib"-*.so.3; do \
            ln -sf "$base_lib" "$bundled"; \
        done; \
    done; \
    python -c 'import ssl, psycopg; assert psycopg.pq.__impl__ == "binary"; psycopg.pq.version()'; \
    rm -rf "$site"/sqlalchemy/testing "$site"/alembic/testing "$site"/mako/testing \
        "$site"/croniter/tests; \
    find "$site" \( -name '*.pyi' -o -name '*.map' \) -type f -delete; \
    find "$site" -name __pycache__ -type d -prune -exec rm -rf {} +; \
    python -m compileall -q -j 0 -b -o 2 -x '/flipkart_api/' "$site"; \
    find "$site" -name '*.py' -type f -not -path '*/flipkart_api/*' -delete; \
    python -m compileall -q -j 0 "$site/flipkart_api"

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
# flipkart_build_info{revision=...} on /metrics; last, so a new revision rebuilds one layer.
ENV APP_REVISION=${REVISION}
# Plain stdlib, 0.05-0.1 s on a busy host; `flipkart-api healthcheck` imports click and the
# settings first (0.2-0.4 s), and slow probes are how healthy replicas get marked unhealthy.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '5000'), timeout=2)"]
# exec form: `serve` execs granian, which becomes PID 1 and receives SIGTERM directly.
CMD ["flipkart-api", "serve"]
