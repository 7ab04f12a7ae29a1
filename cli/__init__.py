"""krakenflow cli."""
