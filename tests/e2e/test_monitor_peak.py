"""From the method form to the monitor of the finished run: the form's memory estimate goes into
the run's spec at launch, the real worker reports its peak, and the monitor sets the two side by side."""

from __future__ import annotations

import pytest

from screens.app import WorkbenchApp
from screens.method import MethodScreen
from screens.monitor import MonitorScreen
from screens.widgets.mode_estimate import ModeEstimate
from tests.ui.test_method import SIZE, type_into, wait_until
from tests.ui.test_monitor import text_of
from workbench import locations
from workbench.jobs import store
from workbench.jobs.peak_report import peak_figures
from workbench.run import events as ev
from workbench.run.spec import JobSpec

pytestmark = pytest.mark.e2e


async def test_the_monitor_of_a_finished_run_shows_its_peak_beside_the_form_s_estimate(tiny_project):
    run_id = None
    try:
        app = WorkbenchApp()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.app.workers.wait_for_complete()
            await pilot.press("enter")  # open "tiny"
            await pilot.app.workers.wait_for_complete()
            await pilot.press("t")
            await pilot.pause()
            assert isinstance(app.screen, MethodScreen)
            await type_into(pilot, "max_steps", "3")
            await type_into(pilot, "eval_steps", "0")
            panel = app.screen.query_one(ModeEstimate)
            await wait_until(pilot, lambda: panel.current() != {}, 120)  # the real `workbench estimate` child
            shown = panel.current()
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), 30)
            screen = app.screen
            run_id = screen.run_id
            assert JobSpec.load(locations.run_dir(tiny_project, run_id)).estimate == shown
            assert shown["device"] == "cpu" and shown["mode"] == "lora" and shown["bytes"] > 0
            await wait_until(pilot, lambda: screen.history.finished is not None
                             and "peak" in text_of(screen.query_one("#stats")), 240)
            end = screen.history.finished
            assert end.reason == "completed" and end.peak_memory > 0 and end.peak_gpu_memory == 0
            expected = peak_figures(end.peak_memory, 0, shown)
            assert expected.endswith(f" (est. {shown['bytes'] / 1024 ** 3:.1f})")
            row = next(line for line in text_of(screen.query_one("#stats")).splitlines() if "peak" in line)
            assert " ".join(row.split()) == f"peak {expected}"
            print(f"measured {end.peak_memory / 1024 ** 3:.3f} GiB, estimated {shown['bytes'] / 1024 ** 3:.3f} GiB, "
                  f"ratio {shown['bytes'] / end.peak_memory:.2f}")
        last = ev.read_all(locations.run_dir(tiny_project, run_id) / "events.jsonl")[-1]
        assert isinstance(last, ev.Finished) and last.peak_memory == end.peak_memory
    finally:
        if run_id:
            try:
                store.stop(tiny_project, run_id)
            except store.RunError:
                pass
            store.wait(tiny_project, run_id, timeout=120)
