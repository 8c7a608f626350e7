# syntax=docker/dockerfile:1
# alertbot image: built from this repository, installed from wheels, run as a non-root user.
#   docker build -t alertbot .        (README, "Deploy with Docker", has the rest)

# --- build: the package and every dependency as wheels (the only stage that needs the network)
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot/ ./bot/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- run: install those wheels offline; no compiler, no source tree, no secret
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheels are bind-mounted from the build stage so they never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl
RUN groupadd --system --gid 10001 alertbot \
    && useradd --system --uid 10001 --gid alertbot --home-dir /app --shell /usr/sbin/nologin alertbot
WORKDIR /app
# Shipped rules and the example configuration: a bind mount over /app/rules replaces the rules,
# and a file mounted at /app/alertbot.yaml is read instead of the bundled example.
COPY rules/ /app/rules/
COPY alertbot.example.yaml /app/
RUN mkdir -p /app/state && chown alertbot:alertbot /app/state
VOLUME ["/app/state"]
USER 10001:10001
HEALTHCHECK --interval=1m --timeout=15s --start-period=2m --retries=3 CMD ["alertbot", "health"]
ENTRYPOINT ["alertbot"]
CMD ["run"]
