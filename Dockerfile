# syntax=docker/dockerfile:1
#
# Atelier images: one Dockerfile, two targets.
#
#   docker build --target worker -t atelier-worker .   # GPU inference worker (CUDA torch)
#   docker build --target slim   -t atelier-slim   .   # Discord bot, REST API, post worker (CPU)
#
# Build arguments (all optional):
#   TORCH_VERSION         torch release installed in both targets (default 2.13.0).
#   TORCH_INDEX_URL       slim target: package index to take torch from. Empty (the default) means
#                         pip's configured index, whose Linux x86_64 torch is the large CUDA build.
#                         Set it to PyTorch's CPU wheel index (the --index-url that PyTorch's
#                         "install" selector gives for Linux / pip / CPU) for a CPU-only torch,
#                         a few hundred MB instead of several GB. That index also serves torch's
#                         own dependencies; every other package comes from pip's configured index.
#   TORCH_CUDA_INDEX_URL  worker target: the same, for the CUDA build. Empty means pip's configured
#                         index (torch 2.13 there is built for CUDA 13 and needs driver >= 580);
#                         set it to one of PyTorch's cu12x indexes for an older driver, and pick a
#                         matching CUDA_IMAGE.
#   CUDA_IMAGE            base of the worker target (an nvidia/cuda image, Ubuntu 22.04 flavour).
#   PYTHON_IMAGE          base of the slim target.
#   APP_UID / APP_GID     uid and gid of the unprivileged `atelier` user; match the owner of the
#                         host folder mounted at /models so the Hugging Face cache is writable.
#
# No secret is read at build time and none is stored in an image: DISCORD_TOKEN, HF_TOKEN and a
# Redis password come from the environment when a container starts. config/atelier.toml and any
# .env file are kept out of the build context by .dockerignore.

ARG PYTHON_IMAGE=python:3.11-slim
# torch's CUDA wheels bring their own CUDA user-space libraries (cuBLAS, cuDNN, ...) as pip
# packages, so the small `base` flavour is enough: the CUDA runtime plus the NVIDIA container
# settings. A `-runtime-` or `-cudnn-runtime-` tag works as well, at a few GB more.
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-base-ubuntu22.04


# ---------------------------------------------------------------------------------------------
# requirements: the runtime dependencies from pyproject.toml, as a requirements file. Only
# pyproject.toml goes in, so the dependency layers below are rebuilt only when it changes.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" \
        > /requirements.txt \
    && cat /requirements.txt


# ---------------------------------------------------------------------------------------------
# worker: the GPU inference worker, on an NVIDIA CUDA base with Python 3.11 and a CUDA torch.
# ---------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS worker

ARG TORCH_VERSION=2.13.0
ARG TORCH_CUDA_INDEX_URL=
ARG APP_UID=1000
ARG APP_GID=1000
ARG DEBIAN_FRONTEND=noninteractive

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HOME=/models/hf-cache \
    HF_HUB_DISABLE_TELEMETRY=1 \
    ATELIER_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid "${APP_GID}" atelier \
    && useradd --uid "${APP_UID}" --gid "${APP_GID}" --create-home --shell /usr/sbin/nologin atelier \
    && mkdir -p /app /data /models/hf-cache \
    && chown atelier:atelier /data /models /models/hf-cache \
    && python3.11 -m venv /opt/venv

# torch first, from the chosen index; pinned by a constraint so no later install swaps it.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --upgrade pip \
    && echo "torch==${TORCH_VERSION}" > /opt/venv/constraints.txt \
    && pip install "torch==${TORCH_VERSION}" ${TORCH_CUDA_INDEX_URL:+--index-url=$TORCH_CUDA_INDEX_URL}

COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r /tmp/requirements.txt -c /opt/venv/constraints.txt

# The source last: a code change rebuilds only this layer. .dockerignore lets through only
# pyproject.toml and studio/ gpu_worker/ cli/ bot/ api/ config/ (whichever exist).
WORKDIR /app
COPY . .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -c /opt/venv/constraints.txt ".[upscale,gpu]" \
    && rm -rf build ./*.egg-info

USER atelier
CMD ["atelier", "worker", "--queue", "inference"]


# ---------------------------------------------------------------------------------------------
# slim: the Discord bot, the REST API and the post worker, on python:3.11-slim with CPU torch
# (set TORCH_INDEX_URL, see above).
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=
ARG APP_UID=1000
ARG APP_GID=1000

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HOME=/models/hf-cache \
    HF_HUB_DISABLE_TELEMETRY=1 \
    ATELIER_DATA_DIR=/data

RUN groupadd --gid "${APP_GID}" atelier \
    && useradd --uid "${APP_UID}" --gid "${APP_GID}" --create-home --shell /usr/sbin/nologin atelier \
    && mkdir -p /app /data /models/hf-cache \
    && chown atelier:atelier /data /models /models/hf-cache \
    && python -m venv /opt/venv

RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --upgrade pip \
    && echo "torch==${TORCH_VERSION}" > /opt/venv/constraints.txt \
    && pip install "torch==${TORCH_VERSION}" ${TORCH_INDEX_URL:+--index-url=$TORCH_INDEX_URL}

COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r /tmp/requirements.txt -c /opt/venv/constraints.txt

WORKDIR /app
COPY . .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -c /opt/venv/constraints.txt . \
    && rm -rf build ./*.egg-info

USER atelier
# The bot is the default role; docker-compose.yml runs the post worker from this image too.
CMD ["atelier", "bot"]
