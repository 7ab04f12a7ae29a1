"""The jobs layer: named use cases (prepare, featurize, train, evaluate, register, promote, drift, ingest,
import, backtest/paper), each a function of typed params, data paths and settings. The CLI, the Prefect
flows and DVC (through `krakenflow stage`) only call these; trader and models never import them."""
