"""krakenflow bench."""
