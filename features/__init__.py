"""krakenflow features."""
