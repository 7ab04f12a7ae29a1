"""The lightweight trading process: engine, brokers, risk, backtest. Never imports orchestration,
data-quality or search libraries (import-linter contract)."""
