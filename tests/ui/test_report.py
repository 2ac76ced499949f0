"""The report, evaluation and comparison screens on recorded run folders and recorded evaluation results
(tests/ui/evaluated.py): the report sets the run's metrics beside the base's and the few-shot baseline's,
pages through base-vs-tuned answers and writes its Markdown; an evaluation is started from a modal that
the engine checks (a refusal stays in the modal), followed while it runs, and stopped; the comparison
table sorts by any column. No model is loaded: where a job would start, the test says what was asked."""

from __future__ import annotations

import os
import time

from textual.app import App
from textual.widgets import DataTable, Input, SelectionList, Static

from screens.commands import ScreenCommands
from screens.compare import CompareScreen
from screens.evaluate import EvaluateScreen
from screens.monitor import MonitorScreen
from screens.playground import PlaygroundScreen
from screens.project import ProjectScreen
from screens.report import ReportScreen
from screens.widgets.chat_pane import ChatPane
from screens.widgets.metric_chart import MetricChart
from tests.ui.evaluated import citations, evaluated_run, recorded_eval_job
from tests.ui.recorded import recorded_run
from tests.ui.world import charts_drawn
from tests.ui.test_playground import FakeServers
from tests.unit.test_store import _HELD, hold_here, release_held  # noqa: F401 - a fixture
from workbench import project
from workbench.evaluate import harness, results
from workbench.evaluate import job as eval_job
from workbench.evaluate.results import Subject
from workbench.jobs import store
from workbench.run import layout
from workbench.serve import catalog

SIZE = (120, 36)
RUN = "20261130-192616-sft"
GRPO = "20261201-101500-grpo"
JOB = "20261130-192857-eval"


class ScreenApp(App):
    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def on_mount(self) -> None:
        self.push_screen(self.make())


async def wait_for(pilot, predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def demo(home) -> None:
    project.create("demo")
    citations("demo")
    evaluated_run("demo", RUN)


def table_rows(table: DataTable) -> list[list[str]]:
    return [[str(getattr(cell, "plain", cell)) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def plain(widget: Static) -> str:
    return str(widget.render())


async def open_report(pilot, app):
    screen = app.screen
    await wait_for(pilot, lambda: isinstance(screen, ReportScreen) and screen.data is not None, "the report")
    await charts_drawn(pilot)
    return screen


# the report -------------------------------------------------------------------------------

async def test_the_report_sets_the_run_beside_the_base_and_the_few_shot_baseline(home):
    demo(home)
    app = ScreenApp(lambda: ReportScreen("demo", RUN))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_report(pilot, app)
        table = screen.query_one("#metrics", DataTable)
        assert [c.label.plain for c in table.columns.values()] == ["metric", "base", "base+3-shot", "tuned"]
        rows = {row[0]: row[1:] for row in table_rows(table)}
        assert rows["JSON valid"] == ["0%", "95%", "100%"]
        assert rows["fields right (all)"] == ["0%", "49%", "99%"]
        assert rows["held-out loss"] == ["0.836", "0.1911", "-"]  # the run's evaluation took none
        exact = table.get_row_at(list(rows).index("exact match"))[-1]
        assert "green" in str(exact.spans[0].style)  # better than the base
        assert not screen.query_one("#status").display  # nothing running, the results are there
        assert table.border_subtitle == "citations-eval · 2026-11-21"

        loss = screen.query_one("#loss", MetricChart)
        assert loss.title.startswith("train 10.7") and "eval" in loss.border_title
        assert not screen.query_one("#reward").display  # SFT logs no reward

        examples = screen.query_one("#examples")
        assert examples.border_title == "example 1/6"
        assert "Mercer, Hugh. On the Atlantic Trade" in plain(screen.query_one("#prompt"))
        assert plain(screen.query_one("#base-answer")).startswith("Mercer, Hugh. On the Atlantic Trade. 3rd edn.")
        tuned = plain(screen.query_one("#tuned-answer"))
        assert tuned.startswith('{"title": "On the Atlantic Trade", "author": "Mercer, Hugh"')
        assert "exact · fields 3/3" in tuned
        await pilot.press("]", "]")
        assert examples.border_title == "example 3/6"
        assert "Le royaume et la bibliothèque" in plain(screen.query_one("#prompt"))
        assert plain(screen.query_one("#base-answer")).startswith('The book is titled "Le royaume')
        await pilot.press("[", "[", "[")
        assert examples.border_title == "example 6/6"  # round to the last

        await pilot.press("w")
        written = layout.evaluations(store.get("demo", RUN).path) / layout.EVAL_REPORT
        await wait_for(pilot, lambda: screen.written == written and written.exists(), "the Markdown")
        text = written.read_text()
        assert text.startswith(f"# {RUN} (demo)") and "| JSON valid | 0% | 95% | 100% |" in text
        assert str(written) in [n.message for n in app._notifications][-1]


async def test_a_run_not_evaluated_says_how_and_an_rl_run_shows_its_reward(home):
    demo(home)
    recorded_run("grpo", "demo", GRPO)
    app = ScreenApp(lambda: ReportScreen("demo", GRPO))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_report(pilot, app)
        assert "Not evaluated yet: press a" in plain(screen.query_one("#status"))
        rows = {row[0]: row[1:] for row in table_rows(screen.query_one("#metrics", DataTable))}
        assert rows["JSON valid"] == ["0%", "95%", "-"]
        assert screen.query_one("#reward").display
        assert screen.query_one("#reward", MetricChart).title.startswith("mean 0.2292 ±")
        assert "None yet" in plain(screen.query_one("#prompt")) and not screen.query_one("#answers").display
        assert screen.check_action("example", (1,)) is False and screen.check_action("stop", ()) is False


async def test_on_a_narrow_terminal_the_curves_take_the_metrics_place(home):
    demo(home)
    app = ScreenApp(lambda: ReportScreen("demo", RUN))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_report(pilot, app)
        assert screen.query_one("#metrics").display and not screen.query_one("#curves").display
        await pilot.press("v")
        await pilot.pause(0.1)
        assert not screen.query_one("#metrics").display and screen.query_one("#curves").region.width > 70
        await pilot.press("v")
        await pilot.pause(0.1)
        assert screen.query_one("#metrics").display and not screen.query_one("#curves").display


# evaluating ---------------------------------------------------------------------------------

async def test_the_modal_offers_the_metrics_the_records_call_for_and_starts_the_job_with_the_choices(
        home, monkeypatch):
    demo(home)
    asked = []

    def start(project_name, run_id="", **options):
        asked.append((project_name, run_id, options))
        return recorded_eval_job("demo")

    monkeypatch.setattr(eval_job, "start", start)
    app = ScreenApp(lambda: ReportScreen("demo", RUN))
    async with app.run_test(size=SIZE) as pilot:
        report = await open_report(pilot, app)
        await pilot.press("a")
        modal = app.screen
        assert isinstance(modal, EvaluateScreen)
        await wait_for(pilot, lambda: modal.setup is not None, "the eval split")
        metrics = modal.query_one("#metrics", SelectionList)
        assert metrics.selected == ["exact_match", "fields"]  # JSON references: as the CLI chooses
        assert modal.query_one("#shots", Input).value == "3"  # the train split has examples
        assert "60 held-out record(s) of citations-eval" in plain(modal.query_one("#what"))
        metrics.select("json")
        modal.query_one("#shots", Input).value = "2"
        assert modal.query_one("#lm-eval-row").display is harness.installed()  # offered where lm-eval is installed
        modal.query_one("#lm-eval", Input).value = "arith, kinds"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is report, "the modal to close")
        assert asked == [("demo", RUN, {"few_shot": 2, "metrics": ["exact_match", "fields", "json"], "datasets": [],
                                        "lm_eval": ["arith", "kinds"], "reward_model": "",
                                        "judge_model": ""})]  # datasets: the eval split


async def test_a_refusal_of_the_engine_stays_in_the_modal_in_one_line(home):
    demo(home)
    app = ScreenApp(lambda: EvaluateScreen("demo", RUN))
    async with app.run_test(size=(80, 24)) as pilot:
        modal = app.screen
        await wait_for(pilot, lambda: modal.setup is not None, "the eval split")
        modal.query_one("#metrics", SelectionList).select("code")  # the records carry no unit tests
        await pilot.press("ctrl+s")
        error = modal.query_one("#error", Static)
        await wait_for(pilot, lambda: error.display and not modal.starting, "the refusal")
        assert "tests" in plain(error) and "\n" not in plain(error).strip()
        assert app.screen is modal and eval_job.jobs("demo") == []  # nothing written
        modal.query_one("#shots", Input).value = "-1"
        await pilot.press("ctrl+s")
        assert plain(error) == "Few-shot k is a whole number, 0 or more."


async def test_a_project_without_held_out_data_is_told_why_in_the_modal(home, chat_file):
    from workbench.data.importer import import_file

    project.create("bare")
    import_file("bare", chat_file)
    app = ScreenApp(lambda: EvaluateScreen("bare"))
    async with app.run_test(size=(80, 24)) as pilot:
        modal = app.screen
        await wait_for(pilot, lambda: modal.setup is not None, "the eval split")
        assert "has no eval split" in plain(modal.query_one("#error"))
        assert not modal.query_one("#metrics").display
        await pilot.press("ctrl+s")  # nothing to start
        assert app.screen is modal and eval_job.jobs("bare") == []


async def test_the_report_follows_a_running_evaluation_stops_it_and_shows_its_results(home, monkeypatch):
    demo(home)
    job_dir = recorded_eval_job("demo")
    spec = (job_dir / "job.toml").read_text().replace('[params]\nrun = ""', f'[params]\nrun = "{RUN}"')
    (job_dir / "job.toml").write_text(spec)
    events = (job_dir / "events.jsonl").read_text().splitlines()
    (job_dir / "events.jsonl").write_text("\n".join(events[:20]) + "\n")  # at 92 of 120 answers
    (job_dir / "pid").write_text(f"{os.getpid()}\n")
    (job_dir / "heartbeat").write_text(f"{time.time()}\n")
    hold_here(job_dir)
    stopped = []
    monkeypatch.setattr(store, "stop", lambda project_name, run_id: stopped.append(run_id))  # the worker is us
    monkeypatch.setattr("screens.report.REFRESH_SECONDS", 0.2)
    app = ScreenApp(lambda: ReportScreen("demo", RUN))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_report(pilot, app)
        status = screen.query_one("#status")
        assert status.display and plain(status).startswith(f"Evaluating ({JOB}): 92/120 answers")
        assert screen.check_action("evaluate", ()) is False and screen.check_action("stop", ()) is True
        await pilot.press("s")
        await wait_for(pilot, lambda: stopped == [JOB], "the stop")

        # the job ends with new results for the run: the report shows them
        found = results.read("demo", Subject(run=RUN))
        found["metrics"]["exact_match"] = 0.5
        results.write("demo", Subject(run=RUN), found, results.read_generations("demo", Subject(run=RUN)))
        (job_dir / "events.jsonl").write_text("\n".join(events[:20] + events[-1:]) + "\n")
        _HELD.pop().close()
        await wait_for(pilot, lambda: not status.display, "the end of the evaluation")
        rows = {row[0]: row[1:] for row in table_rows(screen.query_one("#metrics", DataTable))}
        assert rows["exact match"] == ["0%", "2%", "50%"]
        assert screen.check_action("evaluate", ()) is True


# comparing ----------------------------------------------------------------------------------

async def test_the_comparison_sorts_by_a_column_best_first_then_the_other_way(home):
    demo(home)
    recorded_run("grpo", "demo", GRPO)
    app = ScreenApp(lambda: CompareScreen("demo"))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4, "the rows")
        headers = [c.label.plain.strip() for c in table.columns.values()]
        assert headers[:6] == ["run", "method", "state", "steps", "train_loss", "eval_loss"]
        assert headers.index("json_valid") < headers.index("mode")  # metrics before the parameters
        assert [r[0] for r in table_rows(table)] == ["base", "base+3-shot", RUN, GRPO]

        table.move_cursor(column=headers.index("json_valid"))
        await pilot.press("s")
        assert [r[0] for r in table_rows(table)] == [RUN, "base+3-shot", "base", GRPO]  # GRPO: not evaluated
        assert list(table.columns.values())[headers.index("json_valid")].label.plain == "json_valid ▼"
        assert "By json_valid, best first" in plain(screen.query_one("#how"))
        await pilot.press("s")
        assert [r[0] for r in table_rows(table)] == ["base", "base+3-shot", RUN, GRPO]  # still last
        assert "json_valid ▲" in [c.label.plain.strip() for c in table.columns.values()]

        table.move_cursor(column=headers.index("train_loss"))
        await pilot.press("s")  # a loss: lowest first
        assert [r[0] for r in table_rows(table)] == [GRPO, RUN, "base", "base+3-shot"]

        await pilot.press("w")  # the table as shown, in Markdown
        written = home / "demo" / "compare.md"
        await wait_for(pilot, lambda: screen.written == written and written.exists(), "the Markdown")
        lines = written.read_text().splitlines()
        assert lines[0] == "# Runs of demo" and lines[2].startswith("4 rows, by train_loss, ")
        assert lines[4].startswith("| run | method | state | steps | train_loss | eval_loss | ")  # the screen's columns
        assert [line.split(" | ")[0][2:] for line in lines[6:]] == [GRPO, RUN, "base", "base+3-shot"]  # its order

        table.move_cursor(row=0)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen), "the report")
        assert app.screen.run_id == GRPO


async def test_a_click_on_a_header_sorts_and_the_base_has_no_report(home):
    demo(home)
    app = ScreenApp(lambda: CompareScreen("demo"))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, "the rows")
        table.post_message(DataTable.HeaderSelected(table, next(k for k in table.columns if k.value == "exact_match"),
                                                    [k.value for k in table.columns].index("exact_match"),
                                                    table.columns[next(k for k in table.columns
                                                                       if k.value == "exact_match")].label))
        await wait_for(pilot, lambda: screen.sort_by == "exact_match", "the sort")
        assert [r[0] for r in table_rows(table)] == [RUN, "base+3-shot", "base"]
        table.move_cursor(row=2)
        await pilot.press("o")
        assert isinstance(app.screen, CompareScreen)
        assert "no report of its own" in [n.message for n in app._notifications][-1]


# from the project and the monitor ---------------------------------------------------------------

async def test_the_project_opens_the_report_the_comparison_and_the_evaluation(home):
    demo(home)
    recorded_eval_job("demo")
    app = ScreenApp(lambda: ProjectScreen("demo"))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "the runs")
        keys = [row.key.value for row in table.ordered_rows]
        table.move_cursor(row=keys.index(JOB))
        assert screen.evaluated_run() == ""  # the recorded job evaluated the base alone
        await pilot.press("o")
        assert isinstance(app.screen, ProjectScreen)  # no run to report on
        await pilot.press("e")  # nor a model to export: said, and no export screen
        await wait_for(pilot, lambda: app._notifications, "the refusal")
        assert [n.message for n in app._notifications][-1] == (
            f"{JOB} is an evaluation job: it trains no model to export. Name a training run (`workbench runs` "
            "lists them).")
        assert isinstance(app.screen, ProjectScreen)
        table.move_cursor(row=keys.index(RUN))
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen), "the report")
        assert app.screen.run_id == RUN
        await pilot.press("escape")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), "the modal")
        assert app.screen.run_id == RUN
        await pilot.press("escape")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the comparison")


async def test_the_monitor_opens_the_playground_on_the_run_and_the_base(home, tmp_path, monkeypatch):
    demo(home)
    servers = FakeServers(tmp_path / "servers")  # scripted servers, the real list of the project's models
    monkeypatch.setattr("screens.playground.Servers", lambda: servers.servers(choices=catalog.choices("demo")))
    app = ScreenApp(lambda: MonitorScreen("demo", RUN))
    try:
        async with app.run_test(size=SIZE) as pilot:
            monitor = app.screen
            await wait_for(pilot, lambda: monitor.method == "sft" and monitor.info is not None, "the run")
            names = [name for name, _, _ in ScreenCommands(monitor)._commands()]
            assert {"Playground", "Report", "Evaluate…"} <= set(names)
            await pilot.press("p")
            playground = app.screen
            assert isinstance(playground, PlaygroundScreen)
            await wait_for(pilot, lambda: len(playground.clients) == 2, "both models")
            left, right = playground.query(ChatPane)
            assert (left.ref, right.ref) == ("base", f"run:{RUN}")
            assert set(servers.started) == {"base", f"run:{RUN}"}
    finally:
        servers.close()


async def test_the_project_opens_the_playground_on_the_highlighted_run_or_the_base_alone(home, tmp_path, monkeypatch):
    demo(home)
    recorded_eval_job("demo")  # of the base alone
    servers = FakeServers(tmp_path / "servers")
    monkeypatch.setattr("screens.playground.Servers", lambda: servers.servers(choices=catalog.choices("demo")))
    app = ScreenApp(lambda: ProjectScreen("demo"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            table = screen.query_one("#runs", DataTable)
            await wait_for(pilot, lambda: table.row_count == 2, "the runs")
            keys = [row.key.value for row in table.ordered_rows]
            for row, models in ((RUN, ("base", f"run:{RUN}")), (JOB, ("base", ""))):
                table.move_cursor(row=keys.index(row))
                await pilot.press("p")
                await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen), "the playground")
                assert app.screen.models == models
                await pilot.press("escape")
                await wait_for(pilot, lambda: app.screen is screen, "the project")
    finally:
        servers.close()


async def test_the_monitor_of_an_evaluation_opens_the_report_of_the_run_it_evaluates(home):
    demo(home)
    job_dir = recorded_eval_job("demo")
    spec = (job_dir / "job.toml").read_text().replace('[params]\nrun = ""', f'[params]\nrun = "{RUN}"')
    (job_dir / "job.toml").write_text(spec)
    app = ScreenApp(lambda: MonitorScreen("demo", JOB))
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.evaluated == RUN and monitor.info is not None, "the job")
        for action in ("export", "playground", "evaluate"):
            assert not monitor.check_action(action, ())  # an evaluation has no model of its own
        await charts_drawn(pilot)
        chart = monitor.query_one(MetricChart)  # no curve to wait for: the chart says where the figures are
        assert chart.border_title == "an evaluation: no training curve"
        assert chart.title == f"o: the report of {RUN}"
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen), "the report")
        assert app.screen.run_id == RUN


def test_the_palette_lists_the_report_screen_actions():
    names = {b.description for b in ReportScreen.BINDINGS}
    assert {"Evaluate…", "Stop evaluation", "Write .md", "Playground"} <= names
    assert all(b.id for b in ReportScreen.BINDINGS + CompareScreen.BINDINGS + EvaluateScreen.BINDINGS)


def test_an_answer_the_token_limit_cut_says_so_in_the_report_and_its_markdown():
    from screens.report import answer_text
    from workbench.evaluate.report import answer_cell

    cut = {"answer": '{"title": "On the', "cut": 72, "scores": {"exact_match": False}}
    assert answer_text(cut).plain == '{"title": "On the\nnot exact · cut at 72 tokens'
    assert answer_cell(cut) == '{"title": "On the<br>*(cut at 72 tokens)*'
    whole = {"answer": "done", "scores": {}}
    assert answer_text(whole).plain == "done" and answer_cell(whole) == "done"
