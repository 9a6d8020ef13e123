# The couturier image: one image, its command picks the job.
#
#   docker build -t couturier .
#   docker run -p 8080:8080 -e COUTURIER_PROFILE=production ... couturier            # serve
#   docker run ... couturier db upgrade                                             # migrations
#   docker run ... couturier pipelines run JOB                                      # a pipeline
#
# The install steps are the README's (the Makefile's): the locked dependencies, then the
# package without dependencies. tests/unit/deploy/test_dockerfile.py checks that they stay the
# same commands and runs hadolint on this file (no Docker engine runs on the project's machines).
#
# requirements.lock pins torch==2.13.0+cpu, which only PyTorch's CPU index has: PIP_EXTRA_INDEX_URL
# points pip at it. hnswlib and implicit publish no wheel for Linux/CPython 3.11: the build stage
# has a compiler and CMake to build them (the runtime stage has neither).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL}
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/couturier
ENV PATH=/opt/couturier/bin:$PATH
WORKDIR /build
# the lock first: this layer is rebuilt only when a dependency changes, not on every edit
COPY requirements.lock ./
RUN python -m pip install -q -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m pip install -q --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: LightGBM's OpenMP runtime (the slim image leaves it out)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 couturier \
    && useradd --system --uid 10001 --gid couturier --home-dir /var/lib/couturier \
       --create-home --shell /usr/sbin/nologin couturier
COPY --from=build /opt/couturier /opt/couturier
ENV PATH=/opt/couturier/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    COUTURIER_HOME=/var/lib/couturier
WORKDIR /var/lib/couturier
USER 10001:10001
EXPOSE 8080
# liveness of the OIP service (its readiness, /v2/health/ready, is for the load balancer)
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/v2/health/live', timeout=2)"]
ENTRYPOINT ["couturier"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
