"""`python -m market.emulator [--port N]`: the emulator alone, replaying the bundled samples.
(`krakenflow emulator` has every option: keys, balances, data, speed.)"""

from __future__ import annotations

import argparse
import time

from market.emulator.server import make_emulator

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m market.emulator")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seconds-per-candle", type=float, default=0.1)
    args = parser.parse_args()
    handle = make_emulator(port=args.port, seconds_per_candle=args.seconds_per_candle or None).start()
    print(f"Kraken emulator on {handle.url} (no API keys: use `krakenflow emulator --api-key ...`)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        handle.stop()
