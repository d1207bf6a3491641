# glmbot container image.
#   docker build -t glmbot .
#   docker run --env-file .env -p 3000:3000 glmbot            # HTTP mode (the default command)
#   docker run --env-file .env glmbot serve                    # Socket Mode when SLACK_APP_TOKEN is set
#   docker run --rm -it --env-file .env glmbot console         # chat in the terminal
# Settings come from the environment (see deploy/.env.example); no .env file is baked into the image.
# Another provider or model is settings too, e.g. OpenRouter with a price of your own:
#   docker run --env-file .env -e GLM_BASE_URL=https://openrouter.ai/api/v1 -e GLM_MODEL=z-ai/glm-4.5v \
#     -e GLM_INPUT_USD_PER_MTOK=0.60 -e GLM_OUTPUT_USD_PER_MTOK=1.80 -p 3000:3000 glmbot

# The base image. For a build that gives the same image every time, pin it by digest:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> -t glmbot .
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the locked dependencies, then the project, into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
# Exactly the versions and files in requirements.lock: pip refuses any file whose sha256 is not listed
# there, and nothing outside it is installed (--no-deps). The lock includes setuptools, the build backend.
# This layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# The project itself, with no dependency resolution (they are all installed above) and built by the
# locked setuptools rather than one fetched for an isolated build.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install --no-deps --no-build-isolation . \
 && pip check

# ---- runtime: the virtualenv on a clean slim image, run as a non-root user ----
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 glmbot \
 && useradd --system --uid 10001 --gid glmbot --no-create-home --shell /usr/sbin/nologin glmbot

COPY --from=build /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json

WORKDIR /app
# Numeric uid so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

EXPOSE 3000

# /healthz answers 200 when the store answers, 503 otherwise (urllib raises on 503 -> unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]

ENTRYPOINT ["glmbot"]
CMD ["serve", "--http"]
