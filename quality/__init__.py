"""krakenflow quality."""
