# aoai-lens: the dashboard with its scheduler. Build: docker build -t aoai-lens .
# Run the demo:  docker run -p 8050:8050 aoai-lens
# Against Azure: mount an aoai-lens.toml (AOAI_LENS_CONFIG=/config/aoai-lens.toml), set dashboard.auth,
# and give the container a managed identity (see docs/production.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    AOAI_LENS_DATA_DIR=/data

RUN useradd --create-home --uid 10001 lens && mkdir -p /data /app && chown lens:lens /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY queries ./queries
COPY alerts ./alerts
COPY dashboard ./dashboard
RUN pip install --no-cache-dir .

USER lens
VOLUME ["/data"]
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=4).status == 200 else 1)"

# Binding 0.0.0.0 inside the container: --no-auth says so explicitly (a warning is printed at start).
# For anything but a local demo, set dashboard.auth (basic or appservice) and drop --no-auth.
CMD ["aoai-lens", "serve", "--host", "0.0.0.0", "--port", "8050", "--no-auth"]
