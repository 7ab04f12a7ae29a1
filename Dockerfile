# The krakenflow image: the same pinned install as `make install`; default command = the live trader.
FROM python:3.11-slim
WORKDIR /opt/krakenflow
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PREFECT_SERVER_ANALYTICS_ENABLED=false \
    KRAKENFLOW_HOME=/opt/krakenflow KRAKENFLOW_STATE_DIR=/opt/krakenflow/.krakenflow
COPY pyproject.toml requirements.lock README.md ./
COPY core core
COPY market market
COPY quality quality
COPY features features
COPY models models
COPY trader trader
COPY flows flows
COPY pipeline pipeline
COPY console console
COPY cli cli
COPY params.yaml ./
COPY data/sample data/sample
RUN python -m pip install --no-cache-dir -c requirements.lock . \
    && useradd --create-home krakenflow && mkdir -p .krakenflow && chown krakenflow .krakenflow
USER krakenflow
# the status port (console, /status, /healthz, /metrics for Prometheus) on every interface of the container:
# publish it to the host's loopback (compose.yaml does), never to the world without KRAKENFLOW_CONSOLE_TOKEN
ENV KRAKENFLOW_STATUS_HOST=0.0.0.0
EXPOSE 8051
CMD ["krakenflow", "trade", "--mode", "live", "--poll-seconds", "30", "--status-port", "8051"]
