"""Prefect flows. Thin: each task calls one pipeline stage. The only package that imports prefect."""
