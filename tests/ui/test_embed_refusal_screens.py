"""The app says in one line why an embedding run (method embed) has no GGUF export and no evaluation by
generation, before any job starts (the engine's refusals: tests/unit/test_embed_export_refusal.py)."""

from __future__ import annotations

from textual.widgets import RadioButton, Static

from screens.evaluate import EvaluateScreen
from tests.ui.test_export_screen import ExportApp, text_of, wait_for
from tests.ui.test_report import ScreenApp, plain
from tests.unit.test_embed_export_refusal import embed_run
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.evaluate import job as eval_job


async def test_the_export_screen_refuses_a_gguf_of_an_embedding_run(home):
    projects.create("p")
    run_id = embed_run("p")
    app = ExportApp("p", run_id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await pilot.click("#gguf")
        assert screen.query_one("#gguf", RadioButton).value
        await pilot.press("ctrl+s")
        result = screen.query_one("#result", Static)
        await wait_for(pilot, lambda: "Export failed" in text_of(result), 20, "the refusal")
        assert "Run e1 is an embedding model (method embed)" in text_of(result)
        assert not screen.running and not locations.export_jobs_dir("p", run_id).exists()


async def test_the_evaluation_modal_refuses_an_embedding_run(home, tmp_path):
    from tests.conftest import write_jsonl

    projects.create("p")
    rows = [{"anchor": f"q{i}", "positive": f"p{i}"} for i in range(6)]
    import_file("p", write_jsonl(tmp_path / "pairs.jsonl", rows))
    import_file("p", write_jsonl(tmp_path / "held.jsonl", rows[:2]), split="eval")
    run_id = embed_run("p")
    app = ScreenApp(lambda: EvaluateScreen("p", run_id))
    async with app.run_test(size=(100, 30)) as pilot:
        modal = app.screen
        error = modal.query_one("#error", Static)
        await wait_for(pilot, lambda: modal.setup is not None or error.display, 20, "the modal's setup")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "embedding model" in plain(error), 20, "the refusal: " + plain(error))
        assert "\n" not in plain(error).strip() and app.screen is modal and eval_job.jobs("p") == []
