"""Messages that travel up to the app, which routes them to the right screen."""

from __future__ import annotations

from textual.message import Message


class OpenProject(Message):
    """Open the screen of one project."""

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project


class RunMessage(Message):
    """A message about one run of a project; the app routes each kind below to its screen."""

    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project = project
        self.run_id = run_id


class OpenRun(RunMessage):
    """Show the monitor of a run."""


class OpenData(Message):
    """Open the data screen of a project, on one dataset if given."""

    def __init__(self, project: str, dataset: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.dataset = dataset


class ExportRun(RunMessage):
    """Open the export screen of a run."""


class RunStarted(RunMessage):
    """A run was launched; its monitor replaces the screen that launched it."""


class WorkerFailed(Message):
    """Background work failed in a way its screen did not expect; the app tells the person."""

    def __init__(self, what: str, error: BaseException | None) -> None:
        super().__init__()
        self.what = what
        self.error = error

    @property
    def text(self) -> str:
        if self.error is None:
            return f"{self.what} failed."
        detail = str(self.error) or type(self.error).__name__
        return f"{self.what} failed: {detail}"


def forward_failure(node, event) -> None:
    """From a screen's `on_worker_state_changed`: send an unexpected worker error up to the app."""
    from textual.worker import WorkerState

    if event.state == WorkerState.ERROR:
        name = event.worker.name or event.worker.description or "Background work"
        node.post_message(WorkerFailed(name, event.worker.error))
