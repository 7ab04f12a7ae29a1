"""`python -m market.emulator` = `krakenflow emulator`."""

from cli.app import main

if __name__ == "__main__":
    import sys

    sys.argv = ["krakenflow", "emulator", *sys.argv[1:]]
    main()
