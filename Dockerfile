# valuegraph: the service under gunicorn, the same command as `make run`, listening on 0.0.0.0:8000.
#
#   docker build -t valuegraph .
#   docker run --rm -p 8000:8000 valuegraph
#
# BASE_IMAGE is any Debian-like image with python3 (3.11) and its venv module: the official
# python:3.11-slim, or, on a machine whose Docker engine can pull no images, the one that
#   ../shared/docker/base-image.sh
# makes (Debian bookworm's python3 + python3-venv, no pip outside a venv, no `python`, no curl).
#
# BUILD_IMAGE compiles the fast path's C extension in a stage of its own: an image with the same
# Python 3.11, its headers, venv and a C compiler (the official python:3.11, or
#   ../shared/docker/base-image.sh local/python-build:3.11-bookworm python3 python3-venv python3-dev gcc libc6-dev
# ); only the built module reaches the image that runs, which has no compiler.
ARG BUILD_IMAGE=python:3.11
ARG BASE_IMAGE=python:3.11-slim

FROM ${BUILD_IMAGE} AS fastpath
WORKDIR /build
COPY setup.py ./
COPY service/core/_fastpath.c service/core/*.h service/core/
RUN set -eu; \
    python3 -m venv /tmp/build-venv; \
    /tmp/build-venv/bin/python setup.py -q build_ext --inplace; \
    ls service/core/_fastpath*.so

FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Graphviz's dot draws POST /v1/render's SVG pictures, run as a subprocess; Liberation Sans, metric-
# compatible with Helvetica and Arial, lets it size labels as a browser will show them.
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends graphviz fonts-liberation; \
    rm -rf /var/lib/apt/lists/*

# The unprivileged user the server runs as, made once, before anything that changes.
RUN groupadd --system --gid 10001 valuegraph \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/valuegraph \
        --shell /usr/sbin/nologin valuegraph

# The pinned dependencies next, in a layer of their own, so that a change to the code reuses it.
# pip and setuptools leave the venv afterwards: the running service needs neither.
COPY requirements.txt /tmp/requirements.txt
RUN set -eu; \
    python3 -m venv "$VIRTUAL_ENV"; \
    "$VIRTUAL_ENV/bin/pip" install --no-cache-dir --disable-pip-version-check --require-virtualenv \
        -r /tmp/requirements.txt; \
    "$VIRTUAL_ENV/bin/pip" uninstall --yes --quiet --disable-pip-version-check pip setuptools; \
    rm /tmp/requirements.txt

WORKDIR /app
COPY gunicorn.conf.py openapi.yaml ./
COPY service/ service/
COPY --from=fastpath /build/service/core/_fastpath*.so service/core/
RUN python -m compileall -q service

# Root owns the code; the server runs as an unprivileged user that can only read it.
USER 10001:10001

ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000

# No curl in the base image: the venv's python asks GET /healthz, and fails on anything but a 2xx.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["gunicorn", "--config", "gunicorn.conf.py"]
