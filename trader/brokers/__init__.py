"""Brokers turn order intents into fills: simulated (backtest, paper) or Kraken (live)."""
