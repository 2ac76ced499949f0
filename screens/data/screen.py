"""Look at a project's data: its records, what the model sees of one, and statistics.

Records are read straight from `datasets/<name>.jsonl`, a page at a time. What needs
the tokenizer (the chat template with the learned tokens marked, token counts,
preflight) comes from the child process `workbench data PROJECT --json ...`; the
screen asks for a record's render only once the cursor rests, and drops stale answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Header, Input, Label, Select, Static
from textual.worker import get_current_worker

from screens.data.render import render_head, render_segments
from screens.data.source import DATA_COMMAND, SPLIT_COMMAND, ChildError, LineIndex, Row, run_json
from screens.data.split import SplitModal
from screens.messages import forward_failure
from screens.widgets.data_stats import DataStats
from screens.widgets.fit_table import FitTable
from screens.widgets.footer import KeyFooter
from workbench import project as projects
from workbench.terminal import printable

PAGE = 500
RENDER_DELAY = 0.3


class DataScreen(Screen):
    CSS_PATH = "screen.tcss"
    AUTO_FOCUS = "#records"
    COMMAND: tuple[str, ...] = DATA_COMMAND  # the argv prefix of `workbench data`; tests put a stand-in here
    SPLIT: tuple[str, ...] = SPLIT_COMMAND  # the argv prefix of `workbench split`
    BINDINGS = [  # most used first: the footer keeps the keys that fit
        Binding("left_square_bracket", "dataset(-1)", "Prev dataset", key_display="[", id="data.prev"),
        Binding("right_square_bracket", "dataset(1)", "Next dataset", key_display="]", id="data.next"),
        Binding("n", "page(1)", "Next page", id="data.next_page"),
        Binding("p", "page(-1)", "Prev page", id="data.prev_page"),
        Binding("h", "split", "Hold out eval", id="data.split"),
        Binding("m", "max_length", "Max length", id="data.max_length"),
        Binding("tab", "switch_panel", "Table/stats", id="data.switch"),
        Binding("escape", "back", "Back", id="data.back"),
    ]

    class Answer(Message):
        """A page of records or a child's JSON; `topic` says which, `generation` how fresh."""

        def __init__(self, topic: str, generation: int, payload: object) -> None:
            super().__init__()
            self.topic, self.generation, self.payload = topic, generation, payload

    class Failure(Message):
        def __init__(self, topic: str, generation: int, error: str) -> None:
            super().__init__()
            self.topic, self.generation, self.error = topic, generation, error

    def __init__(self, project: str, dataset: str | None = None, command: Sequence[str] | None = None) -> None:
        super().__init__()
        self.project = project
        self.dataset = dataset
        self.command = tuple(command or self.COMMAND)
        self.datasets: list[projects.DatasetEntry] = []
        self.indexes: dict[str, LineIndex] = {}
        self.rows: list[Row] = []
        self.page, self.total = 0, 0
        self.generations = {"page": 0, "render": 0, "stats": 0}
        self.rendered: dict | None = None
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="top"):
            yield Label("dataset", id="dataset-label")
            yield Select([], id="dataset", allow_blank=True, prompt="no datasets")
            yield Static(id="page-info")
        yield Static(id="split-result", markup=False)
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield FitTable(flexible=("prompt", "answer"), id="records", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="render-box"):
                    yield Static("select a record to see what the model sees", id="render-head")
                    yield Static(id="rendered")
            yield DataStats(id="stats")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.title = "Data"
        self.sub_title = f"project {self.project}"
        self.query_one("#render-box").border_title = "what the model sees"
        table = self.query_one("#records", DataTable)
        for label, key in (("#", "index"), ("kind", "kind"), ("prompt", "prompt"), ("answer", "answer")):
            table.add_column(label, key=key)
        self.load_project()

    # datasets and pages -------------------------------------------------------

    @work(thread=True, exclusive=True, group="data.project", exit_on_error=False, name="Reading the project")
    def load_project(self) -> None:
        self.post_message(self.Answer("project", 0, projects.load(self.project).datasets))

    def show_datasets(self, datasets: list[projects.DatasetEntry]) -> None:
        self.datasets = datasets
        self.refresh_bindings()
        select = self.query_one("#dataset", Select)
        select.set_options((Text(printable(f"{d.name} ({d.kind}, {d.records:,})")), d.name) for d in datasets)
        if not datasets:
            self.query_one("#page-info", Static).update("No data yet: press i on the project screen to import.")
            self.ask_stats()
            return
        names = [d.name for d in datasets]
        select.value = self.dataset if self.dataset in names else names[0]

    @on(Select.Changed, "#dataset")
    def _dataset_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.dataset, self.page = event.value, 0
            self.read_page(event.value, 0)
            if self.query_one(DataStats).scope == "dataset" or not self.generations["stats"]:
                self.ask_stats()

    def read_page(self, name: str, page: int) -> None:
        self.generations["page"] += 1
        kind = next((d.kind for d in self.datasets if d.name == name), "?")
        self.query_one("#page-info", Static).update(Text("reading…", style="italic"))
        self._read_page(name, page, kind, self.generations["page"])

    @work(thread=True, exclusive=True, group="data.page", exit_on_error=False, name="Reading the dataset")
    def _read_page(self, name: str, page: int, kind: str, generation: int) -> None:
        try:
            index = self.indexes.get(name)
            if index is None or not index.is_current():
                index = self.indexes[name] = LineIndex(projects.load(self.project).dataset_path(name))
            rows = index.rows(page * PAGE, PAGE, kind)
        except (OSError, projects.ProjectError) as exc:
            self.post_message(self.Failure("page", generation, str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Answer("page", generation, (page, len(index), rows)))

    def show_page(self, page: int, total: int, rows: list[Row]) -> None:
        self.page, self.total, self.rows = page, total, rows
        table = self.query_one("#records", FitTable)
        table.clear()
        for row in rows:
            table.add_row(str(row.index), *(Text(printable(cell), no_wrap=True, overflow="ellipsis")
                                            for cell in (row.kind, row.prompt, row.answer)), key=str(row.index))
        table.fit()  # the index and kind as wide as their cells, the prompt and answer share the rest
        info = f"records {page * PAGE + 1:,}–{page * PAGE + len(rows):,} of {total:,}" if rows else "no records"
        if total > PAGE:
            info += "  ·  n/p next/previous page"
        self.query_one("#page-info", Static).update(info)
        self.refresh_bindings()
        if rows:
            table.move_cursor(row=0)
            self.schedule_render()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Page keys only for a file longer than a page, dataset keys only with several datasets."""
        if action == "page":
            return self.total > PAGE
        if action == "dataset":
            return len(self.datasets) > 1
        if action == "split":
            return any(d.name == self.dataset and d.split == "train" for d in self.datasets)
        return True

    def action_dataset(self, step: int) -> None:
        names = [d.name for d in self.datasets]
        if len(names) > 1:
            current = names.index(self.dataset) if self.dataset in names else 0
            self.query_one("#dataset", Select).value = names[(current + step) % len(names)]

    def action_page(self, step: int) -> None:
        page = self.page + step
        if self.dataset and 0 <= page and page * PAGE < self.total:
            self.read_page(self.dataset, page)

    # one record, rendered by the child ----------------------------------------

    @on(DataTable.RowHighlighted, "#records")
    def _record_highlighted(self) -> None:
        self.schedule_render()

    def selected(self) -> Row | None:
        table = self.query_one("#records", DataTable)
        return self.rows[table.cursor_row] if 0 <= table.cursor_row < len(self.rows) else None

    def schedule_render(self) -> None:
        """Ask for the render only when the cursor rests; a newer choice supersedes an older one."""
        self.generations["render"] += 1
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(RENDER_DELAY, self.render_selected)

    def render_selected(self) -> None:
        row = self.selected()
        if row is None or self.dataset is None:
            return
        generation = self.generations["render"]
        self.query_one("#render-head", Static).update(
            Text(f"rendering record {row.index}… (the first one loads the tokenizer)", style="italic"))
        argv = [*self.command, self.project, "--json", "--show", str(row.index), "--dataset", self.dataset]
        self.ask("render", generation, argv)

    def show_render(self, payload: dict) -> None:
        self.rendered = payload
        self.query_one("#render-head", Static).update(render_head(payload))
        self.query_one("#rendered", Static).update(render_segments(payload.get("segments") or []))

    # statistics -----------------------------------------------------------------

    def ask_stats(self) -> None:
        """The figures of the selected dataset, or of all of them, as the statistics panel says."""
        self.generations["stats"] += 1
        stats = self.query_one(DataStats)
        argv = [*self.command, self.project, "--json"]
        if stats.scope == "dataset" and self.dataset:
            argv += ["--dataset", self.dataset]
        if stats.chosen_max_length:
            argv += ["--max-length", str(stats.chosen_max_length)]
        stats.show_busy()
        self.ask("stats", self.generations["stats"], argv)

    def on_data_stats_options_changed(self, message: DataStats.OptionsChanged) -> None:
        self.ask_stats()
        if message.submitted:
            self.query_one("#records", DataTable).focus()

    def action_max_length(self) -> None:
        self.query_one("#max-length", Input).focus()

    def action_switch_panel(self) -> None:
        table = self.query_one("#records", DataTable)
        if table.has_focus:
            self.query_one(DataStats).focus()
        else:
            table.focus()

    # holding out an eval split ---------------------------------------------------

    def action_split(self) -> None:
        entry = next((d for d in self.datasets if d.name == self.dataset and d.split == "train"), None)
        if entry is not None:
            self.app.push_screen(SplitModal(self.project, entry, self.SPLIT), self._split_done)

    def _split_done(self, line: str | None) -> None:
        """The child's one-line result; then the new eval dataset and counts are read again."""
        if line:
            self.query_one("#split-result", Static).update(Text(f"✔ {printable(line)}", style="green"))
            self.load_project()  # the page and the dataset's figures follow the reselected dataset
            if self.query_one(DataStats).scope == "all":
                self.ask_stats()

    # the child process ----------------------------------------------------------

    @work(thread=True, exit_on_error=False, name="Asking `workbench data`")
    def ask(self, topic: str, generation: int, argv: list[str]) -> None:
        stale = lambda: self.generations[topic] != generation or not self.is_attached  # noqa: E731
        try:
            payload = run_json(argv, stale)
        except (ChildError, OSError) as exc:
            self.post_message(self.Failure(topic, generation, str(exc)))
            return
        if payload is not None:
            self.post_message(self.Answer(topic, generation, payload))

    def on_data_screen_answer(self, message: Answer) -> None:
        if message.topic == "project":
            self.show_datasets(message.payload)
        elif message.generation != self.generations[message.topic]:
            return
        elif message.topic == "page":
            self.show_page(*message.payload)
        elif message.topic == "render":
            self.show_render(message.payload if isinstance(message.payload, dict) else {})
        elif message.topic == "stats":
            self.query_one(DataStats).show(message.payload if isinstance(message.payload, dict) else {})

    def on_data_screen_failure(self, message: Failure) -> None:
        if message.generation != self.generations.get(message.topic):
            return
        if message.topic == "stats":
            self.query_one(DataStats).show_error(message.error)
        elif message.topic == "render":
            self.query_one("#render-head", Static).update(Text(f"✖ {printable(message.error)}", style="bold red"))
            self.query_one("#rendered", Static).update("")
        else:
            self.query_one("#page-info", Static).update(Text(f"✖ {printable(message.error)}", style="bold red"))

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
