"""Every deployment `krakenflow serve` registers loads in a fresh process, the way a worker's flow run
loads it (Prefect's engine, from the deployment's entrypoint), from any directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flows.ingest import ingest_deployments
from flows.serve import build_deployments


def test_every_deployment_loads_from_its_entrypoint_in_a_fresh_process(tmp_path: Path) -> None:
    entrypoints = {d.name: d.entrypoint for d in [*build_deployments(), *ingest_deployments()]}
    assert len(entrypoints) == 7
    assert all(":" not in e and e.startswith("flows.") for e in entrypoints.values()), entrypoints
    script = ("import sys\nfrom prefect.flows import load_flow_from_entrypoint\n"
              "for e in sys.argv[1:]:\n    print(e, load_flow_from_entrypoint(e).name)\n")
    done = subprocess.run([sys.executable, "-c", script, *entrypoints.values()], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("krakenflow-") == 7, done.stdout
