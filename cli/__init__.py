"""The `krakenflow` command line (Typer + Rich). Commands import their packages lazily."""
