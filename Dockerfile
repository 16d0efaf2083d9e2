# The fabzone hub (and the MQTT fleet simulator: same image, another command).
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fabzone ./fabzone
COPY drivers ./drivers
COPY firmware_profiles ./firmware_profiles
COPY web ./web
RUN pip install --no-cache-dir . && useradd --system --create-home fabzone \
    && mkdir -p /var/lib/fabzone && chown fabzone /var/lib/fabzone
USER fabzone
# `pip install .` installs the packages, not the pages: the hub serves them from the copy above.
ENV FABZONE_WEB_DIR=/app/web
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=2)"
CMD ["fabzone", "serve", "--config", "/etc/fabzone/fabzone.toml", "--host", "0.0.0.0", "--port", "8000"]
