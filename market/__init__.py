"""krakenflow market."""
