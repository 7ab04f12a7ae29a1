"""krakenflow trader.brokers."""
