"""A project: a folder holding `project.toml`, its datasets and its runs."""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from workbench import locations, models
from workbench.files import read_toml, write_toml

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_BASE_MODEL = "default"


class ProjectError(ValueError):
    """A problem with a project a person can fix (bad name, missing project...)."""


def validate_name(name: str) -> str:
    """Return the name if it can be a project folder, else raise with the reason."""
    if not name or not name.strip():
        raise ProjectError("A project needs a name.")
    if "/" in name or "\\" in name:
        raise ProjectError(f"'{name}' contains a path separator; use letters, digits, '-', '_' or '.'.")
    if ".." in name:
        raise ProjectError(f"'{name}' contains '..'; use letters, digits, '-', '_' or '.'.")
    if not NAME_PATTERN.match(name):
        raise ProjectError(
            f"'{name}' is not a valid name: start with a letter or digit, then up to 63 "
            "letters, digits, '-', '_' or '.', no spaces."
        )
    return name


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class DatasetEntry:
    """One imported dataset, stored normalised as `datasets/<name>.jsonl`."""

    name: str
    kind: str
    records: int
    source: str
    imported: str
    split: str = "train"

    @property
    def file(self) -> str:
        return f"datasets/{self.name}.jsonl"


@dataclass
class Project:
    name: str
    base_model: str = DEFAULT_BASE_MODEL
    description: str = ""
    created: str = field(default_factory=now_iso)
    datasets: list[DatasetEntry] = field(default_factory=list)
    # per-method parameter values that suit this project (prefill the form; --set overrides)
    defaults: dict[str, dict] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return locations.project_dir(self.name)

    def dataset(self, name: str) -> DatasetEntry:
        for entry in self.datasets:
            if entry.name == name:
                return entry
        known = ", ".join(d.name for d in self.datasets) or "none"
        raise ProjectError(f"Project '{self.name}' has no dataset '{name}' (it has: {known}).")

    def dataset_path(self, name: str) -> Path:
        return self.path / self.dataset(name).file

    def save(self) -> None:
        data = {
            "project": {
                "name": self.name,
                "base_model": self.base_model,
                "description": self.description,
                "created": self.created,
            },
            "datasets": [asdict(d) for d in self.datasets],
            "defaults": self.defaults,
        }
        write_toml(locations.project_file(self.name), data)


def create(name: str, base_model: str = DEFAULT_BASE_MODEL, description: str = "") -> Project:
    validate_name(name)
    if locations.project_dir(name).exists():
        raise ProjectError(f"A project named '{name}' already exists.")
    try:
        models.check(base_model)
    except models.ModelError as exc:
        raise ProjectError(f"{str(exc).rstrip('.')}: give a Hugging Face model folder (with config.json), "
                           "a .gguf file or 'default'.") from None
    if base_model != DEFAULT_BASE_MODEL:
        base_model = str(Path(base_model).expanduser().resolve())
    project = Project(name=name, base_model=base_model, description=description)
    for sub in ("datasets", "runs"):
        (project.path / sub).mkdir(parents=True, exist_ok=True)
    project.save()
    return project


def load(name: str) -> Project:
    """The project `name`; a ProjectError when it is missing, or when its folders or dataset files
    lead through a link outside the projects home (a shared project is not trusted to stay inside)."""
    validate_name(name)
    try:
        path = locations.project_file(name)
        if not path.exists():
            raise ProjectError(f"No project named '{name}' in {locations.projects_home()}.")
        data = read_toml(path)
        meta = data.get("project", {})
        project = Project(
            name=name,
            base_model=meta.get("base_model", DEFAULT_BASE_MODEL),
            description=meta.get("description", ""),
            created=meta.get("created", ""),
            datasets=[DatasetEntry(**d) for d in data.get("datasets", [])],
            defaults=data.get("defaults", {}),
        )
        for inside in (locations.datasets_dir(name), locations.runs_dir(name), locations.rankings_file(name),
                       *(project.path / d.file for d in project.datasets)):
            locations.inside_home(inside)
    except locations.OutsideHome as exc:
        raise ProjectError(f"Project '{name}': {exc}") from None
    return project


def list_projects(refused: list[tuple[str, str]] | None = None) -> list[Project]:
    """The projects of the home that load. A project folder that does not (an unreadable project.toml,
    a link out of the home) is left out, and appended to `refused` as (name, why) when it is given, so
    that a view can say what it does not show."""
    home = locations.projects_home()
    if not home.exists():
        return []
    projects = []
    for child in sorted(home.iterdir()):
        if (child / "project.toml").exists() and NAME_PATTERN.match(child.name):
            try:
                projects.append(load(child.name))
            except (OSError, ValueError) as exc:
                if refused is not None:
                    refused.append((child.name, str(exc) or type(exc).__name__))
    return projects


def delete(name: str) -> None:
    validate_name(name)
    shutil.rmtree(locations.project_dir(name))
