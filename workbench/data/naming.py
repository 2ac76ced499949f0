"""What an import names its dataset, and the refusal to replace one unasked: shared by the importer of one
file and the importer of a DatasetDict's splits."""

from __future__ import annotations

import re
from pathlib import Path

from workbench import project as projects


class DatasetExists(projects.ProjectError):
    """The project already has a dataset of that name, and replacing it was not asked for."""

    def __init__(self, project: str, dataset: str, records: int) -> None:
        super().__init__(f"Project '{project}' already has a dataset '{dataset}' ({records} record(s)): "
                         "replace it (--replace), or import under another name (--dataset NAME).")
        self.project, self.dataset, self.records = project, dataset, records


def dataset_name_for(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-.") or "data"
    return name[:64]
