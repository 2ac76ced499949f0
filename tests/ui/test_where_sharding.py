"""The form's "Where it runs" sets `sharding` (auto, ddp, fsdp) the way `--set-runtime sharding=...` does, and
the engine's refusal of FSDP with an adapter shows in the form before any run folder exists."""

from __future__ import annotations

from textual.widgets import Input, Select, Static

from tests.ui.test_method import SIZE, MethodApp, text, type_into
from workbench import locations


async def test_fsdp_chosen_in_the_form_is_refused_for_lora_in_one_line(tiny_project):
    app = MethodApp(tiny_project)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert screen.query_one("#where-sharding", Select).value == "auto"
        assert screen.query_one("#where-sharding").parent.display  # a setting of this machine, always shown
        await type_into(pilot, "max_steps", "2")
        screen.query_one("#where-processes", Input).value = "2"
        screen.query_one("#where-sharding", Select).value = "fsdp"
        await pilot.pause()
        assert screen.query_one("#where").read() == ("local", ["processes=2", "sharding=fsdp"], "")
        await pilot.press("ctrl+s")
        await pilot.pause(0.5)
        said = text(screen.query_one("#launch-error", Static))
        assert "sharding=fsdp shards full fine-tuning; mode=lora trains few enough weights" in said
        assert not list(locations.runs_dir(tiny_project).iterdir())
