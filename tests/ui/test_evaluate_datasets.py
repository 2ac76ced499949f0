"""Evaluating on datasets other than the eval split from the app: the modal's "Evaluate on" (the eval split, or
datasets picked instead: the line above the form, the metrics ticked and the job's `datasets` follow the
choice), and the results on them in the report (`d`: the next dataset) and in the comparison (columns of their
own). No model is loaded: where a job would start, the test says what was asked; results are written with
`results.write` (tests/unit/test_eval_elsewhere.py)."""

from __future__ import annotations

from textual.widgets import DataTable, Input, SelectionList

from screens.compare import CompareScreen
from screens.evaluate import SPLIT, EvaluateScreen
from screens.report import ReportScreen
from tests.ui.evaluated import recorded_eval_job
from tests.ui.test_report import (
    SIZE,
    ScreenApp,
    open_report,
    plain,
    table_rows,
    wait_for,
)
from tests.unit.test_eval_elsewhere import ON, RUN, arith_results, demo

GRPO = "20261201-101500-grpo"
from workbench import project
from workbench.evaluate import job as eval_job


async def tick(pilot, modal: EvaluateScreen, value: str) -> None:
    """Tick or untick `value` of "Evaluate on" the way a person does: its row highlighted, then space."""
    choices = modal.query_one("#on", SelectionList)
    choices.focus()
    choices.highlighted = [o.value for o in choices.options].index(value)
    await pilot.press("space")
    await pilot.pause(0.05)


async def read_for(pilot, modal: EvaluateScreen, datasets: list[str], what: str) -> None:
    await wait_for(pilot, lambda: modal.setup is not None and modal.setup.datasets == datasets, what)
    await pilot.pause(0.05)


async def test_the_modal_evaluates_on_the_datasets_picked_and_follows_them(home, tmp_path, monkeypatch):
    demo(home, tmp_path)
    asked = []

    def start(project_name, run_id="", **options):
        asked.append((project_name, run_id, options))
        return recorded_eval_job("demo")

    monkeypatch.setattr(eval_job, "start", start)
    app = ScreenApp(lambda: EvaluateScreen("demo", RUN))
    async with app.run_test(size=SIZE) as pilot:
        modal = app.screen
        await read_for(pilot, modal, ["citations-eval"], "the eval split")
        choices = modal.query_one("#on", SelectionList)
        assert [o.value for o in choices.options] == [SPLIT, "citations-train", ON]
        assert choices.selected == [SPLIT] and modal.query_one("#on-row").display
        metrics = modal.query_one("#metrics", SelectionList)
        assert metrics.selected == ["exact_match", "fields"]

        modal.query_one("#shots", Input).value = "2"  # the person's k stays whatever is picked
        await tick(pilot, modal, ON)
        await read_for(pilot, modal, [ON], "the picked dataset")
        assert choices.selected == [ON]  # the eval split unticked
        what = plain(modal.query_one("#what"))
        assert "On 4 record(s) of arith" in what and "kept apart from the eval split's results" in what
        assert "Training records" in what  # arith is in the train split: the run may have learnt it
        assert sorted(metrics.selected) == ["exact_match", "numeric"]  # short numeric answers
        assert modal.query_one("#shots", Input).value == "2"

        await tick(pilot, modal, "citations-train")
        await read_for(pilot, modal, ["citations-train", ON], "both datasets")
        assert "On 404 record(s) of citations-train, arith" in plain(modal.query_one("#what"))

        await tick(pilot, modal, SPLIT)  # the eval split again: the datasets unticked
        await read_for(pilot, modal, ["citations-eval"], "the eval split again")
        assert choices.selected == [SPLIT] and modal.on == []
        assert "On 60 held-out record(s) of citations-eval" in plain(modal.query_one("#what"))
        assert metrics.selected == ["exact_match", "fields"]

        await tick(pilot, modal, SPLIT)  # unticking the eval split alone leaves it ticked: nothing else to evaluate
        assert choices.selected == [SPLIT] and modal.on == []

        await tick(pilot, modal, ON)
        await read_for(pilot, modal, [ON], "the picked dataset")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: asked, "the start")
        assert asked == [("demo", RUN, {"few_shot": 2, "metrics": ["exact_match", "numeric"], "datasets": [ON],
                                        "lm_eval": [], "reward_model": "", "judge_model": ""})]


async def test_a_project_without_an_eval_split_can_pick_a_dataset(home, chat_file, monkeypatch):
    from workbench.data.importer import import_file

    project.create("bare")
    import_file("bare", chat_file, name="chats")
    asked = []
    monkeypatch.setattr(eval_job, "start", lambda name, run_id="", **options: asked.append(options) or None)
    app = ScreenApp(lambda: EvaluateScreen("bare"))
    async with app.run_test(size=(80, 24)) as pilot:
        modal = app.screen
        await wait_for(pilot, lambda: modal.setup is not None, "the setup")
        error = plain(modal.query_one("#error"))
        assert "has no eval split" in error and "Or tick one of the project's datasets" in error
        assert modal.query_one("#on-row").display and not modal.query_one("#metrics").display
        assert [o.value for o in modal.query_one("#on", SelectionList).options] == ["chats"]
        await pilot.press("ctrl+s")
        assert asked == []  # nothing to start yet

        await tick(pilot, modal, "chats")
        await read_for(pilot, modal, ["chats"], "the picked dataset")
        assert not modal.query_one("#error").display and modal.query_one("#metrics").display
        assert "record(s) of chats" in plain(modal.query_one("#what"))
        assert not modal.query_one("#judge-row").display  # the base alone: no judge
        await tick(pilot, modal, "chats")  # nothing ticked and no eval split: told again
        await wait_for(pilot, lambda: modal.setup.error, "the refusal")
        assert "has no eval split" in plain(modal.query_one("#error"))


async def test_the_report_shows_each_other_dataset_the_run_was_evaluated_on(home, tmp_path):
    demo(home, tmp_path)
    arith_results()
    app = ScreenApp(lambda: ReportScreen("demo", RUN))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_report(pilot, app)
        table = screen.query_one("#metrics", DataTable)
        assert table.border_title == "final metrics · eval split (1/2, d: next)"
        assert {r[0]: r[1:] for r in table_rows(table)}["JSON valid"] == ["0%", "95%", "100%"]
        assert screen.check_action("dataset", ()) is True

        await pilot.press("d")
        assert table.border_title == "final metrics · on arith (2/2, d: next)"
        assert [c.label.plain for c in table.columns.values()] == ["metric", "base", "base+3-shot", "tuned"]
        rows = {r[0]: r[1:] for r in table_rows(table)}
        assert rows["exact match"] == ["25%", "50%", "100%"] and "JSON valid" not in rows
        assert table.border_subtitle == "arith · 2026-12-01"
        examples = screen.query_one("#examples")
        assert examples.border_title == "example 1/4 · on arith"
        await pilot.press("]")
        assert "What is 1+1?" in plain(screen.query_one("#prompt"))
        assert plain(screen.query_one("#base-answer")).startswith("wrong 1")
        assert plain(screen.query_one("#tuned-answer")).startswith("2")

        await pilot.press("d")  # round to the eval split
        assert table.border_title.startswith("final metrics · eval split")
        assert examples.border_title == "example 1/6 · eval split"


async def test_without_other_results_the_report_has_no_dataset_key(home, tmp_path):
    demo(home, tmp_path)
    app = ScreenApp(lambda: ReportScreen("demo", RUN))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_report(pilot, app)
        assert screen.query_one("#metrics").border_title == "final metrics"
        assert screen.query_one("#examples").border_title == "example 1/6"
        assert screen.check_action("dataset", ()) is False


async def test_the_comparison_has_columns_for_the_other_datasets_and_sorts_by_them(home, tmp_path):
    demo(home, tmp_path)
    arith_results()
    app = ScreenApp(lambda: CompareScreen("demo"))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, "the rows")
        headers = [c.label.plain.strip() for c in table.columns.values()]
        assert headers.index("exact_match on arith") == headers.index("rewards.numeric on arith") - 1
        assert headers.index("json_valid") < headers.index("exact_match on arith") < headers.index("mode")
        table.move_cursor(column=headers.index("exact_match on arith"))
        await pilot.press("s")
        rows = table_rows(table)
        assert [r[0] for r in rows] == [RUN, "base+3-shot", "base"]
        assert [r[headers.index("exact_match on arith")] for r in rows] == ["100%", "50%", "25%"]


async def test_a_run_evaluated_only_on_another_dataset_says_where_its_results_are(home, tmp_path):
    from tests.ui.recorded import recorded_run

    demo(home, tmp_path)
    recorded_run("grpo", "demo", GRPO)
    arith_results(GRPO)
    app = ScreenApp(lambda: ReportScreen("demo", GRPO))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_report(pilot, app)
        status = screen.query_one("#status")
        assert status.display and "d: its results on other datasets" in plain(status)
        await pilot.press("d")
        assert not status.display  # on arith the run has its figures
        assert {r[0]: r[1:] for r in table_rows(screen.query_one("#metrics", DataTable))}["exact match"] == \
            ["25%", "50%", "100%"]


def test_an_eval_split_of_several_datasets_offers_each_of_them_alone(home, tmp_path):
    from screens.evaluate import read_setup
    from workbench.data.importer import import_file

    demo(home, tmp_path)
    setup = read_setup("demo", RUN)
    assert setup.split == ["citations-eval"] and [d for d, _, _ in setup.offered] == ["citations-train", ON]
    second = tmp_path / "more.jsonl"
    second.write_text('{"prompt": "2 + 2 =", "completion": "4"}\n')
    import_file("demo", second, name="more", split="eval")
    setup = read_setup("demo", RUN)
    assert setup.split == ["citations-eval", "more"]
    assert [(d, split) for d, split, _ in setup.offered] == [
        ("citations-train", "train"), ("citations-eval", "eval"), (ON, "train"), ("more", "eval")]
    assert read_setup("demo", RUN, ["more"]).datasets == ["more"]  # one of them alone, as `eval --dataset`
