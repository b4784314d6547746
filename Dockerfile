# cueflow's server image: `docker build -t cueflow .`, then `docker run -p 8000:8000 cueflow`
# (SQLite in the container) or see compose.yaml and deploy/kubernetes/ for PostgreSQL and three
# nodes behind a balancer (docs/deploy.md).

# Build stage: install cueflow and its dependencies into a virtual environment.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY cueflow ./cueflow
COPY plugins ./plugins
# the server (cueflow serve, the command line) and the PostgreSQL store: README, "Install what you use"
RUN python -m venv /opt/cueflow && /opt/cueflow/bin/pip install ".[server,postgres]"

# Run stage: the virtual environment only, run by an unprivileged user.
FROM python:3.12-slim
RUN groupadd --system --gid 10001 cueflow \
    && useradd --system --uid 10001 --gid cueflow --home-dir /home/cueflow --create-home cueflow
COPY --from=build /opt/cueflow /opt/cueflow
ENV PATH=/opt/cueflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000
USER 10001:10001
WORKDIR /home/cueflow
EXPOSE 8000
# SIGTERM starts the drain (docs/operations.md, "Shutdown and drain"): give `docker stop` more
# than CUEFLOW_GRACEFUL_TIMEOUT_SECONDS (20 s by default), e.g. `docker stop -t 30`.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
ENTRYPOINT ["cueflow"]
CMD ["serve", "--host", "0.0.0.0"]
