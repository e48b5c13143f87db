# One image for every wa-queue process (api, workers, beat, flower); the compose files in deploy/ pick the command.
# The base is pinned by digest: Chromium comes from its Debian release (bookworm), and a tag can be pushed again.
FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WAQ_DATA_DIR=/data \
    WAQ_CHROME_BINARY=/usr/bin/chromium \
    WAQ_CHROMEDRIVER=/usr/bin/chromedriver

# Chromium and its driver come from the same Debian release, so their major versions match (`waq doctor` checks).
# tini is PID 1: it forwards SIGTERM to Celery (warm shutdown) and reaps the Chrome processes a dead driver leaves.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium chromium-driver fonts-liberation tini \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid, so volumes keep their ownership across rebuilds; /data is owned by it before the volume is mounted
# (an empty named volume copies that ownership).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin waq \
    && mkdir -p /data \
    && chown waq:waq /data

WORKDIR /app
# The pinned dependencies first (their layer survives code changes), then the package itself without resolving
# anything again: the image runs exactly the versions in requirements.lock.
COPY requirements.lock ./
RUN pip install -r requirements.lock
# Only what the package needs (.dockerignore keeps var/, .git and virtualenvs out of the build context anyway).
COPY pyproject.toml README.md beat_schedule.py Procfile ./
COPY wa_queue ./wa_queue
COPY api ./api
COPY workers ./workers
RUN pip install --no-deps . && waq --help >/dev/null

USER waq
VOLUME ["/data"]
EXPOSE 8000 5555

# The default probe of any process: the store and the broker answer. The compose files refine it per service.
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["waq", "doctor", "--check", "store", "--check", "broker"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["waq", "--help"]
