# Two images from one file; in both, the command picks the role:
#   tenrusl serve          the receiver (the default)
#   tenrusl retry once     one retry run (the CronJob)
#   tenrusl migrate        database migrations (the chart's init containers)
#   tenrusl operator       the WebhookRetryPolicy operator (the `operator` target only)
#
# The default target is the receiver image: the receiver, the retry runner and migrations, and no
# Kubernetes client (none of them calls the Kubernetes API). `--target operator` adds the
# `operator` extra (kopf, kubernetes) for the operator. Neither carries pip or setuptools: nothing
# is installed at run time, and a package manager in a running pod is only attack surface.
#
# Stages: `requirements` reads the dependency lists out of pyproject.toml, `deps` and
# `operator-deps` install them into a virtualenv with the image's own Python, `build` makes the
# project's wheel, `app` and `operator-app` install it and remove pip and setuptools from the
# virtualenv, and `runtime` is the base without pip for both final images. So a code change rebuilds
# only the last small layers, and a pyproject change that leaves the dependencies alone reuses the
# dependency layers. Every dependency ships binary wheels, so no stage needs a compiler.
#
# BASE_IMAGE must provide python3 (3.11+) with the venv module. The default is the official slim
# Python image; the tests build on a Debian base made locally (scripts/ensure-tools).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS requirements
ENV PATH=/usr/local/bin:/usr/bin:/bin
COPY pyproject.toml /src/pyproject.toml
RUN python3 -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; print(*p['dependencies'], sep='\n', file=open('/src/requirements.txt', 'w')); print(*p['optional-dependencies']['operator'], sep='\n', file=open('/src/requirements-operator.txt', 'w'))"

FROM ${BASE_IMAGE} AS deps
ENV PATH=/opt/tenrusl/bin:/usr/local/bin:/usr/bin:/bin \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=requirements /src/requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/tenrusl && /opt/tenrusl/bin/pip install --quiet -r /tmp/requirements.txt

FROM deps AS operator-deps
COPY --from=requirements /src/requirements-operator.txt /tmp/requirements-operator.txt
# The kubernetes package ships a second, asyncio copy of its whole client (68 MB) that nothing
# here imports (the operator uses the synchronous client; kopf brings its own): left out.
RUN /opt/tenrusl/bin/pip install --quiet -r /tmp/requirements-operator.txt \
    && rm -rf /opt/tenrusl/lib/python3*/site-packages/kubernetes/aio

FROM ${BASE_IMAGE} AS build
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --quiet "setuptools>=68" wheel
COPY . /src
RUN /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /wheels /src

# The project into each virtualenv, then the installer out of it (pip removes itself last).
FROM deps AS app
COPY --from=build /wheels /tmp/wheels
RUN /opt/tenrusl/bin/pip install --quiet --no-deps --no-index /tmp/wheels/*.whl \
    && /opt/tenrusl/bin/python -m pip uninstall --quiet --yes setuptools pip

FROM operator-deps AS operator-app
COPY --from=build /wheels /tmp/wheels
RUN /opt/tenrusl/bin/pip install --quiet --no-deps --no-index /tmp/wheels/*.whl \
    && /opt/tenrusl/bin/python -m pip uninstall --quiet --yes setuptools pip

# What both images run on: the base without its own pip, setuptools and bundled installer wheels.
FROM ${BASE_IMAGE} AS runtime
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
# (an emptyDir in the chart). The receiver listens on every interface inside a container, on its
# webhook port and its admin port.
ENV PATH=/opt/tenrusl/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    TENRUSL_HOST=0.0.0.0 \
    TENRUSL_PORT=8080 \
    TENRUSL_ADMIN_PORT=9090
RUN for site in /usr/local/lib/python3*/site-packages /usr/lib/python3/dist-packages; do \
        rm -rf "$site"/pip "$site"/pip-* "$site"/setuptools "$site"/setuptools-* "$site"/wheel "$site"/wheel-* \
            "$site"/_distutils_hack "$site"/distutils-precedence.pth; \
    done \
    && rm -rf /usr/local/bin/pip* /usr/bin/pip /usr/bin/pip3* /usr/share/python-wheels \
        /usr/local/lib/python3*/ensurepip/_bundled /usr/lib/python3*/ensurepip/_bundled \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin tenrusl
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
ENTRYPOINT ["tenrusl"]

FROM runtime AS operator
COPY --from=operator-app /opt/tenrusl /opt/tenrusl
EXPOSE 8080 8081
CMD ["operator"]

FROM runtime AS receiver
COPY --from=app /opt/tenrusl /opt/tenrusl
EXPOSE 8080 9090
CMD ["serve"]
