FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 seedream
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
WORKDIR /app
RUN mkdir -p /app/data && chown seedream:seedream /app/data
USER seedream
ENV DATABASE_URL=sqlite:////app/data/seedream.db
VOLUME ["/app/data"]
CMD ["seedream-bot"]
