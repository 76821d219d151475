# One image, two entry points:   brook broker   |   brook operator
#
#   docker build -t brook:0.1.0 .
#   docker run --rm -p 9092:9092 brook:0.1.0 broker \
#       --override listeners=PLAINTEXT://0.0.0.0:9092 \
#       --override advertised.listeners=PLAINTEXT://localhost:9092
#
# Non-root (uid/gid 10001), and friendly to readOnlyRootFilesystem: bytecode is
# compiled at build time, nothing is written outside /tmp and the data volume
# (/var/lib/brook). See docs/operator.md, "Image".

ARG PYTHON_VERSION=3.11

# --- build: wheels for Brook and its dependencies, installed into a venv ----------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first: this layer is reused until pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN python -m venv /opt/brook \
 && /opt/brook/bin/pip install --upgrade pip setuptools wheel \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && /opt/brook/bin/pip install -r /tmp/requirements.txt
COPY broker ./broker
COPY operator ./operator
RUN /opt/brook/bin/pip install --no-deps . \
 && /opt/brook/bin/python -m compileall -q /opt/brook \
 && /opt/brook/bin/brook --help >/dev/null

# --- runtime ------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="brook" \
      org.opencontainers.image.description="Kafka-compatible broker in Python, and its Kubernetes operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 brook \
 && useradd --system --uid 10001 --gid brook --home-dir /var/lib/brook --no-create-home \
      --shell /usr/sbin/nologin brook \
 && mkdir -p /var/lib/brook /etc/brook \
 && chown brook:brook /var/lib/brook
COPY --from=build /opt/brook /opt/brook
ENV PATH=/opt/brook/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /var/lib/brook
VOLUME ["/var/lib/brook"]
# Kafka protocol, controller quorum (gRPC), Prometheus metrics, operator liveness.
EXPOSE 9092 9093 9404 8080
ENTRYPOINT ["brook"]
CMD ["broker"]
