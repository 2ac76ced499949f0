"""A project's runs side by side: method, the parameters that set them apart, losses and metrics, with a
row for the base model and each few-shot baseline (`workbench.evaluate.compare`, as `workbench compare`
prints it); results on datasets other than the eval split are columns of their own after the eval split's
("exact_match on cited"), only when some row has them. `s` orders the rows by the highlighted column, best
first (again: the other way); a click on a header does the same. `o` (or enter) opens a run's report; `w`
writes the table as shown in Markdown (compare.md in the project folder, as `workbench compare --out`).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from screens.messages import forward_failure
from screens.widgets.footer import KeyFooter
from workbench.evaluate import compare
from workbench.terminal import printable

UP, DOWN, UNSORTED = " ▲", " ▼", "  "


def metrics_first(cells: list[list[str]], keys: list[str]) -> list[list[str]]:
    """`compare.table_of`'s rows with the losses and metrics before the parameters (`compare.FIXED`'s first
    four, then the parameters, is the CLI's order): what a person compares comes first on a narrow screen."""
    lead, params = len(compare.FIXED) - 2, len(keys)
    return [line[:lead] + line[lead + params:] + line[lead:lead + params] for line in cells]


def ordered(found: list[compare.Row], column: str, columns: list[str], reverse: bool) -> list[compare.Row]:
    """The rows by `column` as `compare.sort` orders them (best first, rows without a value last), or the
    other way round (the rows without a value still last)."""
    rows = compare.sort(found, column, columns)
    if not reverse:
        return rows
    present = [r for r in rows if r.value(column) is not None]
    return present[::-1] + rows[len(present):]


class CompareScreen(Screen):
    CSS_PATH = "styles/compare.tcss"
    AUTO_FOCUS = "#table"
    BINDINGS = [
        Binding("s", "sort", "Sort by column", tooltip="Order the rows by the highlighted column, best first "
                "(again: the other way)", id="compare.sort"),
        Binding("o", "report", "Report", tooltip="The highlighted run's report", id="compare.report"),
        Binding("w", "write", "Write Markdown", tooltip="The table as shown, in Markdown, to compare.md in the "
                "project folder", id="compare.write"),
        Binding("escape", "back", "Back", id="compare.back"),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.keys: list[str] = []
        self.found: list[compare.Row] = []
        self.columns: list[str] = []
        self.sort_by = ""
        self.reverse = False
        self.written: Path | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="how")
        yield DataTable(id="table", cursor_type="cell", zebra_stripes=True, fixed_columns=1)
        yield Static("No runs and no evaluation yet: train a run (t) or evaluate the base (a) on the project "
                     "screen.", id="empty", classes="empty")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.title = "Compare runs"
        self.sub_title = f"project {self.project}"
        self.query_one("#empty").display = False
        self.load()

    def on_screen_resume(self) -> None:
        if self.found:
            self.load()  # an evaluation may have ended while a report was open

    @work(thread=True, exclusive=True, exit_on_error=False, name="Reading the runs")
    def load(self) -> None:
        keys, found = compare.rows(self.project)
        self.app.call_from_thread(self.show, keys, found)

    def show(self, keys: list[str], found: list[compare.Row]) -> None:
        self.keys, self.found = keys, found
        self.columns = metrics_first(compare.table_of(keys, found)[:1], keys)[0]
        if self.sort_by not in self.columns:
            self.sort_by, self.reverse = "", False
        self.fill()

    def fill(self) -> None:
        """The table afresh (the rows as read, then in the chosen order)."""
        table = self.query_one("#table", DataTable)
        row, column = table.cursor_coordinate
        cells = metrics_first(compare.table_of(self.keys, self.found), self.keys)
        table.clear(columns=True)
        for name in cells[0]:
            table.add_column(Text(printable(name) + UNSORTED), key=name)  # room for the mark
        for line in cells[1:]:
            # no row keys: a key used again after clear(columns=True) gets its old width's render
            table.add_row(*[Text(printable(cell)) for cell in line])
        table.display = bool(self.found)
        self.query_one("#empty").display = not self.found
        self.order_rows()
        table.move_cursor(row=min(row, max(0, table.row_count - 1)), column=min(column, len(cells[0]) - 1))

    def order_rows(self) -> None:
        """The rows in the order `sort_by` and `reverse` say (DataTable.sort: the cells stay as they are), the
        sorted column's header marked."""
        table = self.query_one("#table", DataTable)
        if self.sort_by:
            place = {printable(r.run): i for i, r in enumerate(ordered(self.found, self.sort_by, self.columns, self.reverse))}
            table.sort("run", key=lambda cell: place[cell.plain])
        for key, column in table.columns.items():
            mark = (UP if self.reverse else DOWN) if key.value == self.sort_by else UNSORTED
            column.label = Text(printable(str(key.value)) + mark, style="" if mark == UNSORTED else "bold")
        table.refresh()
        self.show_how()

    def show_how(self) -> None:
        how = self.query_one("#how", Static)
        if not self.sort_by:
            how.update(Text.assemble(("s", "bold"), " sorts by the highlighted column, best first · ", ("o", "bold"),
                                     " opens a run's report · ", ("w", "bold"), " writes the table in Markdown"))
            return
        way = "the other way" if self.reverse else "best first"
        how.update(Text.assemble("By ", (printable(self.sort_by), "bold"), f", {way} (rows without it last) · ",
                                 ("s", "bold"), " again: " + ("best first" if self.reverse else "the other way")))

    # actions -------------------------------------------------------------------------

    def sort_on(self, column: str) -> None:
        if column == self.sort_by:
            self.reverse = not self.reverse
        else:
            self.sort_by, self.reverse = column, False
        self.order_rows()

    def action_sort(self) -> None:
        table = self.query_one("#table", DataTable)
        if self.columns and table.row_count:
            self.sort_on(self.columns[table.cursor_column])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        table = event.data_table
        table.move_cursor(column=event.column_index)
        self.sort_on(str(event.column_key.value))

    def selected(self) -> compare.Row | None:
        table = self.query_one("#table", DataTable)
        if not table.row_count:
            return None
        run = table.get_row_at(table.cursor_row)[0].plain
        return next((r for r in self.found if printable(r.run) == run), None)

    def action_report(self) -> None:
        row = self.selected()
        if row is None or row.method == "base":
            self.notify("The base model has no report of its own: highlight a run.", severity="warning")
            return
        from screens.report import ReportScreen

        self.app.push_screen(ReportScreen(self.project, row.run))

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        self.action_report()

    def shown_cells(self) -> list[list[str]]:
        """The table's text as the screen shows it: its columns' order, its rows' order."""
        rows = ordered(self.found, self.sort_by, self.columns, self.reverse) if self.sort_by else self.found
        return metrics_first(compare.table_of(self.keys, rows), self.keys)

    def action_write(self) -> None:
        if not self.found:
            self.notify("Nothing to write yet: no runs and no evaluation.", severity="warning")
            return
        way = f"{self.sort_by}{' (the other way)' if self.reverse else ''}" if self.sort_by else ""
        self.write_markdown(compare.markdown(self.project, self.shown_cells(), way))

    @work(thread=True, exit_on_error=False, name="Writing the comparison")
    def write_markdown(self, text: str) -> None:
        try:
            path = compare.write(self.project, text)
        except OSError as exc:
            self.app.call_from_thread(self.notify, printable(str(exc)), severity="warning", markup=False)
            return
        self.written = path
        self.app.call_from_thread(self.notify, f"Comparison written to {printable(str(path))}", title="Markdown",
                                  timeout=8, markup=False)

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
