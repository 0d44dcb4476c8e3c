# One image for every TenRusl process; the command picks the role:
#   tenrusl serve          the receiver (the default)
#   tenrusl retry once     one retry run (the CronJob)
#   tenrusl operator       the WebhookRetryPolicy operator
#   tenrusl migrate        database migrations (the chart's init containers)
#
# Stages: `requirements` reads the dependency list out of pyproject.toml, `deps` installs it into a
# virtualenv with the image's own Python, `build` makes the project's wheel, and the final stage
# copies the virtualenv and installs the wheel. So a code change rebuilds only the last small
# layers, and a pyproject change that leaves the dependencies alone reuses the dependency layer.
# Every dependency ships binary wheels, so no stage needs a compiler.
#
# BASE_IMAGE must provide python3 (3.11+) with the venv module. The default is the official slim
# Python image; the tests build on a Debian base made locally (scripts/ensure-tools).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS requirements
ENV PATH=/usr/local/bin:/usr/bin:/bin
COPY pyproject.toml /src/pyproject.toml
RUN python3 -c "import tomllib; deps = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']; print(*deps, sep='\n')" > /src/requirements.txt

FROM ${BASE_IMAGE} AS deps
ENV PATH=/opt/tenrusl/bin:/usr/local/bin:/usr/bin:/bin \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=requirements /src/requirements.txt /tmp/requirements.txt
# The kubernetes package ships a second, asyncio copy of its whole client (68 MB) that nothing
# here imports (the operator uses the synchronous client; kopf brings its own): left out.
RUN python3 -m venv /opt/tenrusl \
    && /opt/tenrusl/bin/pip install --quiet -r /tmp/requirements.txt \
    && rm -rf /opt/tenrusl/lib/python3*/site-packages/kubernetes/aio

FROM ${BASE_IMAGE} AS build
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --quiet "setuptools>=68" wheel
COPY . /src
RUN /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /wheels /src

FROM ${BASE_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# The version comes from pyproject.toml (scripts/ensure-tools passes it); it is written nowhere else.
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tenrusl" \
      org.opencontainers.image.description="Payment-webhook receiver, retry runner and WebhookRetryPolicy operator" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/tenrusl/tenrusl"
# An imported base image has no PATH at all, so set the whole of it. Bytecode is compiled at
# install time, so nothing is written under a read-only root; /tmp is the only writable place
# (an emptyDir in the chart). The receiver listens on every interface inside a container.
ENV PATH=/opt/tenrusl/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    TENRUSL_HOST=0.0.0.0 \
    TENRUSL_PORT=8080
COPY --from=deps /opt/tenrusl /opt/tenrusl
COPY --from=build /wheels /tmp/wheels
RUN /opt/tenrusl/bin/pip install --quiet --no-deps --no-index /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /root/.cache \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin tenrusl
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["tenrusl"]
CMD ["serve"]
