"""krakenflow pipeline."""
