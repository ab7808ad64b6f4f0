# The appliance in a container: the same install step the README uses (./dev install).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ALPRBOX_VENV=/opt/alprbox ALPRBOX_DATA_DIR=/var/lib/alprbox PATH=/opt/alprbox/bin:$PATH
WORKDIR /src
COPY . /src
RUN ./dev install && useradd --system --home /var/lib/alprbox alprbox \
    && mkdir -p /var/lib/alprbox && chown alprbox /var/lib/alprbox
USER alprbox
VOLUME /var/lib/alprbox
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
# Without a site config the container runs the demo; mount one and run:
#   docker run -v ./site.yaml:/etc/alprbox/site.yaml IMAGE alprbox run --config /etc/alprbox/site.yaml --host 0.0.0.0
CMD ["alprbox", "demo", "--host", "0.0.0.0"]
