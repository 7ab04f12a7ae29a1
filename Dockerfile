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
COPY cli cli
COPY params.yaml ./
COPY data/sample data/sample
RUN python -m pip install --no-cache-dir -c requirements.lock . \
    && useradd --create-home krakenflow && mkdir -p .krakenflow && chown krakenflow .krakenflow
USER krakenflow
CMD ["krakenflow", "trade", "--mode", "live", "--poll-seconds", "30"]
