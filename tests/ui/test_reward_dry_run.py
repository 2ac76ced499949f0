"""The reward dry-run modal with a real `workbench rewards` child on the tiny model."""

from __future__ import annotations

import time

import pytest
from textual.app import App
from textual.widgets import DataTable, Input, Static

from screens.reward_dry_run import REWARDS_COMMAND, RewardDryRun, dry_run_argv
from tests.conftest import write_jsonl
from workbench import project
from workbench.data.importer import import_file

pytestmark = pytest.mark.e2e

SIZE = (140, 40)
PROMPTS = [{"prompt": f"Say something about {i}.", "answer": str(i)} for i in range(4)]


class DryRunApp(App):
    def __init__(self, screen: RewardDryRun) -> None:
        super().__init__()
        self.dry_run = screen

    def on_mount(self) -> None:
        self.push_screen(self.dry_run)


async def wait_until(pilot, condition, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the dry run"
        await pilot.pause(0.2)


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_the_form_values_become_the_child_command_line():
    argv = dry_run_argv(REWARDS_COMMAND, "p", "grpo", {"rewards": "format:1,exact:2", "num_generations": "4"},
                        ["a", "b"], completion="hi there")
    assert argv[len(REWARDS_COMMAND):] == ["p", "--method", "grpo", "--json", "--set", "rewards=format:1,exact:2",
                                           "--set", "num_generations=4", "--dataset", "a", "--dataset", "b",
                                           "--completion", "hi there"]


async def test_samples_then_scores_a_typed_completion(home, tiny_model, tmp_path):
    project.create("dry", base_model=str(tiny_model))
    import_file("dry", write_jsonl(tmp_path / "prompts.jsonl", PROMPTS))
    values = {"rewards": "length:1,exact:2", "length_max": "10", "max_completion_length": "5"}
    screen = RewardDryRun("dry", "grpo", values, ["prompts"])
    async with DryRunApp(screen).run_test(size=SIZE) as pilot:
        table = screen.query_one("#dry-table", DataTable)
        await wait_until(pilot, lambda: screen.report is not None)
        assert [str(c.label) for c in table.columns.values()] == ["prompt", "completion", "length", "exact", "total"]
        rows = cells(table)
        assert len(rows) == 3 * 4  # 3 prompts, 4 samples each
        assert rows[0][0] == "1: Say something about 0." and rows[1][0] == ""
        assert all(0.0 <= float(r[-1]) <= 3.0 for r in rows)
        status = str(screen.query_one("#dry-status", Static).render())
        assert "length x1, exact x2; sampled from base" in status

        screen.report = None
        screen.query_one("#dry-completion", Input).value = "1"
        screen.query_one("#dry-completion", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.report is not None)
        rows = cells(table)
        assert [r[1] for r in rows] == ["1"] * 12
        totals = [r[-1] for r in rows[::4]]
        assert totals == ["1.00", "3.00", "1.00"]  # only the second prompt's answer is "1"

        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(pilot.app.screen, RewardDryRun)


async def test_a_bad_reward_is_shown_in_the_modal(home, tiny_model, tmp_path):
    project.create("dry", base_model=str(tiny_model))
    import_file("dry", write_jsonl(tmp_path / "prompts.jsonl", PROMPTS))
    screen = RewardDryRun("dry", "grpo", {"rewards": "nope"}, [])
    async with DryRunApp(screen).run_test(size=SIZE) as pilot:
        status = screen.query_one("#dry-status", Static)
        await wait_until(pilot, lambda: "✖" in str(status.render()))
        assert "Unknown reward(s): nope" in str(status.render())
