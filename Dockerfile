# Keyturn's server: `docker build -t keyturn .`, then see compose.yaml and docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The install the README gives for the server: the package with its `server` extra.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[server]' && cd / && rm -rf /src

# Not root: a process that can be reached from the network owns nothing it runs from.
# Its home holds keyturn.db and keyturn.secret when no database_url is set (development).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/keyturn keyturn
USER keyturn
WORKDIR /var/lib/keyturn

EXPOSE 8000

# The slim image has no curl: the standard library asks /healthz (the process is up;
# /readyz, which also asks the database, is the load balancer's check).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# Settings come from KEYTURN_* variables (or --config FILE); see docs/deploy.md.
ENTRYPOINT ["keyturn"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
