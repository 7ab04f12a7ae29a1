"""krakenflow trader."""
