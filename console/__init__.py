"""The operator console: one window over the trader, registry, A/B, reconciliation, pipelines and data."""
