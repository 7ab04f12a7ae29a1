"""krakenflow market.emulator."""
