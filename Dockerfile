# One image for every wa-queue process (api, workers, beat, flower); docker-compose.yml picks the command.
FROM python:3.11-slim

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
# Only what the package needs: the build context may hold a data folder, a .git and local virtualenvs.
COPY pyproject.toml README.md beat_schedule.py Procfile ./
COPY wa_queue ./wa_queue
COPY api ./api
COPY workers ./workers
RUN pip install . && waq --help >/dev/null

USER waq
VOLUME ["/data"]
EXPOSE 8000 5555

# The default probe of any process: the store and the broker answer. docker-compose.yml refines it per service.
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["waq", "doctor", "--check", "store", "--check", "broker"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["waq", "--help"]
