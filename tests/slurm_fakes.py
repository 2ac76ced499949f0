"""Slurm's commands faked at the subprocess boundary: small executables on PATH that answer from files.

`FakeSlurm(folder)` writes `srun`, `sbatch`, `sacct`, `squeue`, `sinfo`, `scancel` and `scontrol` into
`folder/bin`; a test puts that folder first on PATH and sets a job's state with `fake.state(job, "RUNNING")`.
`sbatch` keeps the script it was given (`fake.submitted()`) and answers with job 4242, then 4243...;
`scancel` and `scontrol` log their arguments (`fake.calls("scancel")`).
"""

from __future__ import annotations

import os
from pathlib import Path

SCRIPTS = {
    "srun": 'echo "fake srun: not on a cluster" >&2; exit 1\n',
    "sbatch": """if [ -f "$FAKE_SLURM/sbatch_refuses" ]; then cat "$FAKE_SLURM/sbatch_refuses" >&2; exit 1; fi
id=$(cat "$FAKE_SLURM/next_id" 2>/dev/null || echo 4242)
cp "$1" "$FAKE_SLURM/submitted-$id.sh"
echo $((id + 1)) > "$FAKE_SLURM/next_id"
echo "Submitted batch job $id"
""",
    "sacct": """if [ -f "$FAKE_SLURM/no_accounting" ]; then echo "sacct: error: accounting storage is disabled" >&2; exit 1; fi
echo "$@" >> "$FAKE_SLURM/sacct.log"
echo "JobID|State|NodeList"
while [ $# -gt 0 ]; do
  if [ "$1" = "-j" ]; then shift; [ -f "$FAKE_SLURM/state-$1" ] && echo "$1|$(cat "$FAKE_SLURM/state-$1")|node001"; fi
  shift
done
exit 0
""",
    "squeue": """while [ $# -gt 0 ]; do
  if [ "$1" = "-j" ]; then shift; id=$1; fi
  shift
done
state=$(cat "$FAKE_SLURM/state-$id" 2>/dev/null)
case "$state" in PENDING|RUNNING|COMPLETING|REQUEUED|CONFIGURING) echo "$state";; esac
exit 0
""",
    "sinfo": """if [ -f "$FAKE_SLURM/sinfo" ]; then cat "$FAKE_SLURM/sinfo"; else printf 'gpu*|2-00:00:00\\ndebug|30:00\\n'; fi
""",
    "scancel": 'echo "$@" >> "$FAKE_SLURM/scancel.log"\n',
    "scontrol": 'echo "$@" >> "$FAKE_SLURM/scontrol.log"\n',
}


class FakeSlurm:
    def __init__(self, folder: Path, monkeypatch) -> None:
        self.folder = Path(folder)
        bin_dir = self.folder / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name, body in SCRIPTS.items():
            path = bin_dir / name
            path.write_text("#!/bin/bash\n" + body)
            path.chmod(0o755)
        monkeypatch.setenv("FAKE_SLURM", str(self.folder))
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        from workbench.jobs import slurm

        slurm.forget_states()

    def state(self, job_id: str, state: str) -> None:
        (self.folder / f"state-{job_id}").write_text(state)
        from workbench.jobs import slurm

        slurm.forget_states()

    def submitted(self, job_id: str = "4242") -> str:
        return (self.folder / f"submitted-{job_id}.sh").read_text()

    def calls(self, command: str) -> list[str]:
        path = self.folder / f"{command}.log"
        return path.read_text().splitlines() if path.exists() else []

    def partitions(self, text: str) -> None:
        (self.folder / "sinfo").write_text(text)
