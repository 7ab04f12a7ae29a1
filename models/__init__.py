"""krakenflow models."""
