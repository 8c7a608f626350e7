# syntax=docker/dockerfile:1
# alertbot image: a virtual environment built from the lock file, run as a non-root user.
#   docker build -t alertbot .        (README, "Deploy with Docker", has the rest)

# The base image, pinned by digest so that every build starts from the same bytes. To bump it
# (a Python patch release, Debian security fixes), look up the digest of the tag's image index:
#   docker buildx imagetools inspect python:3.11-slim-bookworm     # the "Digest:" line
# (or `docker pull` the tag, then `docker image inspect --format '{{index .RepoDigests 0}}'`),
# write the tag and digest below, rebuild, and keep the Python minor version in step with
# requirements.lock's --python-version (README, "The lock file").
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# --- build: /opt/alertbot, a virtual environment with alertbot and its locked dependencies
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/alertbot/bin:$PATH
RUN python -m venv /opt/alertbot
WORKDIR /src
# Dependencies first, each checked against its hash: this layer is rebuilt only when the lock
# file changes, not on every change to bot/.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot/ ./bot/
# alertbot itself, built by the locked setuptools already in the environment (no download);
# its dependencies all came from the lock file, and `pip check` proves none is missing.
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && pip check

# --- run: the environment copied whole (a plain layer, rebuilt whenever it changes); no
# compiler, no source tree, no secret
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="alertbot" \
      org.opencontainers.image.description="Watches conflict and security reporting feeds and pushes topic alerts to Telegram" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/alertbot/alertbot"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/alertbot/bin:$PATH
RUN groupadd --system --gid 10001 alertbot \
    && useradd --system --uid 10001 --gid alertbot --home-dir /app --shell /usr/sbin/nologin alertbot
COPY --from=build /opt/alertbot /opt/alertbot
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
