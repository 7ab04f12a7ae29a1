"""Shared kernel: params, settings, domain types. Imports nothing of ours."""
