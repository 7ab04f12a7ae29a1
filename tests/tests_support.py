"""Constants shared by tests (importable because pytest puts tests/ on sys.path)."""

EMULATOR_KEY = "kf-test-key"
EMULATOR_SECRET = "a3Jha2VuZmxvdy10ZXN0LXNlY3JldC1ub3QtcmVhbC1hdC1hbGwtMTIzNDU2Nzg5MA=="
"""A made-up base64 secret for the local emulator; it opens nothing anywhere else."""
