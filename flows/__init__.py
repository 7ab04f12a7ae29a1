"""krakenflow flows."""
