"""Where a flow run reads and writes, whatever the worker's current directory: the project home and, under
it, the params file and the data directory (given, or from Settings; relative ones are relative to the home)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from prefect.types.entrypoint import EntrypointType

from core.settings import Settings
from pipeline.paths import DataPaths

BY_MODULE = EntrypointType.MODULE_PATH
"""Deployments name their flow by module (`flows.ingest.ingest_flow`), never by file: Prefect runs a file
entrypoint with its folder first on sys.path, where flows/pipeline.py hides the `pipeline` package (every
scheduled ingest crashed on the circular import that made)."""


class FlowProject(NamedTuple):
    """Absolute paths as strings: what tasks take as inputs (and cache on)."""

    params_file: str
    data_dir: str
    home: str


def locate(params_file: str | None = None, data_dir: str | None = None, home: str | None = None) -> FlowProject:
    settings = Settings(home=Path(home)) if home else Settings()
    root = settings.home
    return FlowProject(str(root / (params_file or settings.params_file)), str(root / (data_dir or settings.data_dir)),
                       str(root))


def data_paths(data_dir: str, home: str) -> DataPaths:
    """The jobs' paths; the home is where params.yaml's relative seed files (data.sample) live."""
    return DataPaths(Path(data_dir), Path(home))
