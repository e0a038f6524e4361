# syntax=docker/dockerfile:1
# The service's image: `docker build -t fastapi-production-patterns .` (compose.yaml builds it).
# Two stages: the dependencies are installed with uv from the hashed lock in a build stage, and
# only the virtual environment and the code are copied into the runtime stage, which runs as an
# unprivileged user.

ARG PYTHON_VERSION=3.11

# --- build: the pinned, hashed dependencies into /opt/venv ------------------------------------
FROM python:${PYTHON_VERSION}-slim AS build

# The same uv as the Makefile, installed from PyPI with pip.
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_CACHE_DIR=/var/cache/uv
RUN python -m pip install "uv==${UV_VERSION}" \
 && python -m venv /opt/venv

# Only the lock: the layer is rebuilt when the dependencies change, not when the code does.
WORKDIR /build
COPY requirements.lock ./
RUN --mount=type=cache,target=/var/cache/uv \
    uv pip sync --python /opt/venv/bin/python --require-hashes requirements.lock

# --- runtime: the virtual environment and the code, nothing else -------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    STORAGE_DIR=/data/files \
    VAR_DIR=/data/var

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent app \
 && mkdir -p /data/files /data/var \
 && chown -R app:app /data

COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/app
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app

USER app:app
EXPOSE 8000
VOLUME ["/data/files"]

# Ready means the database (and Redis, when configured) answer: urlopen raises on a 503.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]

# Exec form: python is PID 1 and receives SIGTERM itself, so `serve` shuts down gracefully
# (in-flight requests finish within GRACEFUL_SHUTDOWN_SECONDS) and `worker` puts unfinished
# jobs back in the queue.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "app"]
CMD ["serve"]
