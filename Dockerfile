# aoai-lens: the dashboard, or its scheduler. Build: docker build -t aoai-lens .
# The default command serves the dashboard on 0.0.0.0:8050 and therefore needs an auth mode: set
# dashboard.auth (basic or appservice, see docs/production.md) or it refuses to start (exit 2).
# The production shape (web workers, the scheduler, Redis, a shared data volume) is compose.yaml.
# A quick local demo, anyone who can reach the port sees everything (said so explicitly):
#   docker run -p 127.0.0.1:8050:8050 aoai-lens aoai-lens serve --host 0.0.0.0 --no-auth
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    AOAI_LENS_DATA_DIR=/data

RUN groupadd --gid 10001 lens && useradd --create-home --uid 10001 --gid 10001 lens \
    && mkdir -p /data /app && chown 10001:10001 /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY queries ./queries
COPY alerts ./alerts
COPY dashboard ./dashboard
RUN pip install --no-cache-dir .

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8050
# /healthz answers within a second from cached checks; without credentials it returns only the status.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=4).status == 200 else 1)"]

CMD ["aoai-lens", "serve", "--host", "0.0.0.0", "--port", "8050"]
