"""What a Slurm run's job does on its allocation: submitit calls a `WorkerTask` once per node.

The task starts the same worker a local run starts (`python -m workbench.jobs.worker RUN_DIR`): on one
node the worker itself, which runs one rank per GPU of the allocation under torchrun as it does on a
workstation; across nodes torchrun on each node (a static rendezvous: node 0 of the allocation is the
master; rank 0, on node 0, writes the run's events). It resumes
from the run's latest checkpoint when the folder has one: a run resumed from the app, or a job Slurm
requeued.

When the time limit nears, Slurm sends SIGUSR2 to every process of the job (`#SBATCH
--signal=USR2@grace`). The worker and torchrun ignore it (set so before they start); submitit's handler
in this task calls `checkpoint`, which sends the worker's process group SIGTERM, its stop path (save a checkpoint, write
`finished(stopped)`), waits for it to exit and hands submitit the task of the next life, and submitit
requeues the job (`scontrol requeue`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from workbench.jobs import slurm_record
from workbench.run import events as ev
from workbench.run import layout

PREEMPT_SIGNAL = signal.SIGUSR2  # submitit's (SUBMITIT_PREEMPT_SIGNAL), sent by Slurm before the time limit
BASE_PORT = 29500
SHUTDOWN_SECONDS = 900  # how long torchrun lets the ranks save a checkpoint after a stop


def worker_command(run_dir: Path, resume: bool, nodes: int = 1, gpus_per_node: int = 0, node_rank: int = 0,
                   master: str = "127.0.0.1", port: int = BASE_PORT, python: str = sys.executable) -> list[str]:
    """The worker's command line on one node of the allocation.

    On one node it is the worker itself, as a local run starts it (with several GPUs it runs its ranks
    under torchrun, one per GPU the allocation shows it). Across nodes each node runs torchrun with a
    static rendezvous at node 0, and each rank is the worker started with `--rank` (rank 0 writes)."""
    worker = ["-m", "workbench.jobs.worker", str(run_dir)]
    if nodes <= 1:
        return [python, *worker] + (["--resume"] if resume else [])
    return [python, "-m", "torch.distributed.run", f"--nnodes={nodes}", f"--nproc-per-node={max(gpus_per_node, 1)}",
            f"--node-rank={node_rank}", f"--master-addr={master}", f"--master-port={port}",
            f"--shutdown-timeout={SHUTDOWN_SECONDS}", "--module", *worker[1:], "--rank",
            *(["--resume"] if resume else [])]


def rendezvous_port(job_id: str) -> int:
    """A port for torchrun's master derived from the job id, so that two jobs sharing a node differ."""
    digits = "".join(c for c in str(job_id) if c.isdigit())
    return BASE_PORT + (int(digits) % 2000 if digits else 0)


def completed(run_dir: Path) -> bool:
    ends = [e for e in ev.read_all(Path(run_dir) / layout.EVENTS) if isinstance(e, (ev.Finished, ev.Error))]
    return bool(ends) and isinstance(ends[-1], ev.Finished) and ends[-1].reason == "completed"


def _ignore_preempt_signal() -> None:  # in the worker's process, before it starts: only the task takes it
    signal.signal(PREEMPT_SIGNAL, signal.SIG_IGN)


class WorkerTask:
    """The callable submitit runs on each node of a Slurm run's allocation; checkpointable (requeued)."""

    def __init__(self, run_dir: str, gpus_per_node: int = 0, grace: int = 120) -> None:
        self.run_dir, self.gpus_per_node, self.grace = run_dir, gpus_per_node, grace
        self._proc: subprocess.Popen | None = None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_proc"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._proc = None

    def __call__(self) -> int:
        import submitit

        env = submitit.JobEnvironment()
        run_dir = Path(self.run_dir)
        if completed(run_dir):
            return 0  # a requeued job whose run completed in its last life
        if env.global_rank == 0:
            self._record_life(env.job_id, env.cluster)
        resume = layout.latest_checkpoint(run_dir) is not None
        hosts = env.hostnames
        command = worker_command(run_dir, resume, env.num_nodes, self.gpus_per_node, env.node,
                                 hosts[0] if env.num_nodes > 1 else "127.0.0.1", rendezvous_port(env.job_id))
        worker_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        log = open(run_dir / layout.STDERR, "ab") if env.node == 0 else None  # other nodes: submitit's own log
        try:
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=run_dir,
                                          env=worker_env, preexec_fn=_ignore_preempt_signal,
                                          start_new_session=True)  # its own group, which a stop signals whole
            # Polled, not waited on: submitit's handler for the time-limit signal runs in this thread and
            # waits for the worker itself (a blocking wait here would hold Popen's lock against it).
            while (code := self._proc.poll()) is None:
                time.sleep(0.5)
        finally:
            if log is not None:
                log.close()
        if code != 0:
            raise RuntimeError(f"The worker exited with status {code}; see {run_dir / layout.STDERR}.")
        return code

    def checkpoint(self, *args, **kwargs):
        """submitit's hook when the time limit nears: the worker saves and exits; the next life is returned."""
        import submitit

        if submitit.JobEnvironment().global_rank == 0:  # first: the run reads as requeued, not stopped, from here
            record = slurm_record.read_record(Path(self.run_dir))
            if record is not None:
                record.requeued = time.time()
                slurm_record.write_record(Path(self.run_dir), record)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # the worker, and torchrun with its ranks when it runs them
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=max(self.grace - 10, 5))
            except subprocess.TimeoutExpired:
                print(f"The worker did not stop within {self.grace} s of the signal; requeued from the last "
                      "checkpoint it completed.", file=sys.stderr)
        return submitit.helpers.DelayedSubmission(WorkerTask(self.run_dir, self.gpus_per_node, self.grace))

    def _record_life(self, job_id: str, cluster: str) -> None:
        record = slurm_record.read_record(Path(self.run_dir)) or slurm_record.Record(job_id=job_id, cluster=cluster,
                                                                                    jobs=[job_id])
        record.life_started, record.host, record.task_pid = time.time(), socket.gethostname(), os.getpid()
        slurm_record.write_record(Path(self.run_dir), record)
