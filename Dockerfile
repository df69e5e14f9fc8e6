# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY bot ./bot
COPY cogs ./cogs
# Wheels for the bot and every pinned dependency (PostgreSQL driver included).
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c requirements/constraints.txt '.[postgres]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 seedream
# Installed from a bind mount of the build stage, so the wheels never become a layer of their own.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=build,source=/src/requirements,target=/requirements \
    pip install --no-cache-dir --no-index --find-links /wheels -c /requirements/constraints.txt \
        'seedream-discord-bot[postgres]'
WORKDIR /app
RUN mkdir -p /app/data && chown seedream:seedream /app/data
USER seedream
ENV DATABASE_URL=sqlite:////app/data/seedream.db \
    METRICS_PORT=9100
VOLUME ["/app/data"]
# /metrics (Prometheus) and /healthz; set METRICS_PORT= (empty) to turn both off.
EXPOSE 9100
# Healthy while the gateway is connected and the database answers (the image has no curl).
# Without METRICS_PORT there is nothing to ask, and the check passes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('METRICS_PORT'); port and urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
CMD ["seedream-bot"]
