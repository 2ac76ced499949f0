"""Every path the workbench uses is built here, and nowhere else.

`WORKBENCH_HOME` moves the projects home, `WORKBENCH_CACHE` the model cache. A project's paths
stay inside the projects home: one that leads outside it through a link (a shared project whose
`datasets/x.jsonl` points at `~/.ssh/id_rsa`, or whose `runs/` points elsewhere) is refused with
`OutsideHome` instead of being read or written. The home itself may be a link.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from workbench.run import layout

REPO_ROOT = Path(__file__).resolve().parent.parent


class OutsideHome(PermissionError, ValueError):
    """A project path that leads, through a link, outside the projects home."""


def inside_home(path: Path) -> Path:
    """`path` itself, when it ends inside the projects home after every link on its way is followed;
    else `OutsideHome`."""
    home = projects_home().resolve()
    real = Path(path).resolve()
    if real != home and home not in real.parents:
        raise OutsideHome(f"{path} leads to {real}, outside the projects home {home}: project files are read and "
                          "written only inside it. Remove the link, or copy the file or folder into the project.")
    return Path(path)


def projects_home() -> Path:
    """Where projects live: `$WORKBENCH_HOME`, else `projects/` of the checkout (`~/workbench/projects`
    when the package is installed outside one)."""
    env = os.environ.get("WORKBENCH_HOME")
    if env:
        return Path(env).expanduser().resolve()
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / "projects"
    return Path.home() / "workbench" / "projects"


def cache_home() -> Path:
    """Where converted models are cached (shared by every project)."""
    env = os.environ.get("WORKBENCH_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "workbench"


def models_cache() -> Path:
    return cache_home() / "models"


def project_dir(name: str) -> Path:
    return inside_home(projects_home() / name)


def project_file(name: str) -> Path:
    return inside_home(projects_home() / name / "project.toml")


def datasets_dir(name: str) -> Path:
    return inside_home(projects_home() / name / "datasets")


def runs_dir(name: str) -> Path:
    return inside_home(projects_home() / name / "runs")


def run_dir(name: str, run_id: str) -> Path:
    return inside_home(projects_home() / name / "runs" / run_id)


def exports_dir(name: str, run_id: str) -> Path:
    return layout.exports(run_dir(name, run_id))


def export_jobs_dir(name: str, run_id: str = "") -> Path:
    """The folders of the export jobs of a run, or of the project's base model when `run_id` is empty."""
    return layout.export_jobs(run_dir(name, run_id) if run_id else project_dir(name))


def llama_tools_dir(version: str) -> Path:
    """llama.cpp's converters (and their gguf-py) of one version: `$WORKBENCH_LLAMA_TOOLS`, else in the venv."""
    env = os.environ.get("WORKBENCH_LLAMA_TOOLS")
    if env:
        return Path(env).expanduser().resolve()
    return Path(sys.prefix) / "share" / "workbench" / f"llama.cpp-{version}"


def base_exports_dir(name: str) -> Path:
    """Exports of a project's base model (a run's exports live in the run)."""
    return layout.exports(project_dir(name))


def rankings_file(name: str) -> Path:
    """The append-only log of a project's rankings (one JSON object per committed ranking)."""
    return inside_home(projects_home() / name / "rankings" / "rankings.jsonl")


def answer_labels_file(name: str) -> Path:
    """The append-only log of the answers a person marked good or bad while ranking (one JSON object per mark)."""
    return inside_home(projects_home() / name / "rankings" / "labels.jsonl")


def playground_dir(name: str) -> Path:
    """A project's playground: its saved conversations and the folders of its model servers."""
    return inside_home(projects_home() / name / "playground")
