"""The projects home: every project with its data, runs and base model."""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from screens.messages import OpenProject, forward_failure
from screens.widgets.footer import KeyFooter
from workbench import locations, models
from workbench import project as projects
from workbench.run import layout
from workbench.terminal import printable


@dataclass
class ProjectRow:
    name: str
    base_model: str
    datasets: int
    records: int
    runs: int
    description: str


def read_rows(refused: list[tuple[str, str]] | None = None) -> list[ProjectRow]:
    """Every project of the projects home, with its run count (read from the folders only); those that
    do not load are appended to `refused` as (name, why)."""
    rows = []
    for p in projects.list_projects(refused):
        runs_dir = locations.runs_dir(p.name)
        runs = sum(1 for d in runs_dir.iterdir() if (d / layout.SPEC).exists()) if runs_dir.is_dir() else 0
        rows.append(ProjectRow(p.name, models.describe(p.base_model), len(p.datasets),
                               sum(d.records for d in p.datasets), runs, p.description))
    return rows


def demo_name(rows: list[ProjectRow]) -> str | None:
    """The shipped demo project, recognised by its name or description."""
    for row in rows:
        if "demo" in row.name.lower() or row.description.lower().startswith("demo"):
            return row.name
    return None


class ProjectsScreen(Screen):
    """The first screen: pick a project or create one."""

    CSS_PATH = "styles/projects.tcss"
    SUB_TITLE = "Projects"
    BINDINGS = [
        Binding("enter", "open_project", "Open", priority=True, id="projects.open"),
        Binding("n", "new_project", "New project", id="projects.new"),
        Binding("f5", "refresh", "Refresh", id="projects.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ProjectRow] = []
        self._select_after_load: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="hint")
        yield DataTable(id="projects", cursor_type="row", zebra_stripes=True)
        yield Static(id="details", markup=False)
        yield Static(f"Projects live in {locations.projects_home()}", id="home", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#projects", DataTable)
        table.add_column("Project", key="name")
        table.add_column("Base model", key="base")
        table.add_column("Datasets", key="datasets")
        table.add_column("Records", key="records")
        table.add_column("Runs", key="runs")

    def on_screen_resume(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, name="Reading the projects")
    def load(self) -> None:
        refused: list[tuple[str, str]] = []
        rows = read_rows(refused)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show_rows, rows, refused)

    def show_rows(self, rows: list[ProjectRow], refused: list[tuple[str, str]] = ()) -> None:
        if not self.is_attached:
            return
        self.rows = rows
        home = f"Projects live in {locations.projects_home()}"
        for name, why in refused:
            home += f"\nNot shown: {why.removeprefix(f'Project {name!r}: ')} ({name})"
        self.query_one("#home", Static).update(printable(home))
        table = self.query_one("#projects", DataTable)
        current = self.selected()
        keep = self._select_after_load or (current.name if current else None)
        self._select_after_load = None
        table.clear()
        for row in rows:
            table.add_row(row.name, row.base_model, str(row.datasets), str(row.records), str(row.runs),
                          key=row.name)
        if keep and any(r.name == keep for r in rows):
            table.move_cursor(row=table.get_row_index(keep))
        self.query_one("#hint", Static).update(self.hint())
        self.show_details()

    def hint(self) -> str:
        if not self.rows:
            return "No projects yet. Press [b]n[/b] to create one: a name, then a base model."
        demo = demo_name(self.rows)
        if demo:
            return (f"New here? Open [b]{demo}[/b] (select it, press [b]enter[/b]), then press [b]t[/b] to train "
                    "on its data and watch the loss.\nPress [b]n[/b] to create a project of your own.")
        return "Select a project and press [b]enter[/b] to open it, or [b]n[/b] to create a new one."

    def selected(self) -> ProjectRow | None:
        table = self.query_one("#projects", DataTable)
        if not self.rows or table.row_count == 0:
            return None
        index = table.cursor_row
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def show_details(self) -> None:
        row = self.selected()
        text = ""
        if row:
            text = row.description or f"{row.name}: {row.datasets} dataset(s), {row.runs} run(s)."
        self.query_one("#details", Static).update(printable(text))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_details()

    def action_open_project(self) -> None:
        row = self.selected()
        if row is None:
            self.notify("No project to open yet: press n to create one.", severity="warning")
            return
        self.post_message(OpenProject(row.name))

    def action_new_project(self) -> None:
        from screens.new_project import NewProjectScreen

        self.app.push_screen(NewProjectScreen(), self.created)

    def created(self, name: str | None) -> None:
        if name:
            self._select_after_load = name
            self.notify(f"Created project '{name}'. Press enter to open it.")
            self.load()

    def action_refresh(self) -> None:
        self.load()

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
