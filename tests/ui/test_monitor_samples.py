"""The monitor's samples panel on recorded runs: paging through steps, the worst and best of a step, a
reward function's error once with its count, and what a DPO pair and an SFT answer look like."""

from __future__ import annotations

import io
import os
import time

from rich.console import Console
from textual.widgets._footer import FooterKey

from screens.run_samples import RunSamples, errors_of, picked, rank_value
from screens.widgets.samples_panel import SamplesPanel, error_lines
from tests.ui.recorded import recorded_run
from tests.ui.test_monitor import SIZE, MonitorApp, wait_for, write_events
from tests.unit.test_store import hold_here, release_held  # noqa: F401 - a fixture
from workbench.run import events as ev


def render(renderable) -> str:
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def page_text(screen) -> tuple[str, str]:
    """(the panel's head, its body) as plain text."""
    panel = screen.query_one(SamplesPanel)
    return render(panel.query_one("#samples-head").content), render(panel.query_one("#samples-body").content)


async def open_samples(pilot, app, steps: int):
    screen = app.screen
    await wait_for(pilot, lambda: screen.history.step == steps and len(screen.samples), what=f"step {steps}")
    await pilot.press("v")
    await pilot.pause(0.2)
    assert screen.view == "samples" and screen.query_one(SamplesPanel).display
    return screen


def rewards_in(body: str) -> list[float]:
    return [float(line.split("reward ")[1].split()[0]) for line in body.splitlines() if line.startswith("#")]


async def test_the_panel_pages_through_steps_and_follows_the_newest(home):
    run_dir = recorded_run("grpo")
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_samples(pilot, app, 30)
        head, body = page_text(screen)
        assert "step 30  page 6/6" in head and "8 outputs" in head
        assert body.count("prompt  Say something about 6.") == 1 and body.count("prompt  Say something about 22.") == 1
        assert [line.split()[0] for line in body.splitlines() if line.startswith("#")] == \
            [f"#{n}" for n in range(1, 9)]  # the prompt's four, then the other's
        assert "reward " in body and "adv " in body and "length " in body and "exact " in body

        await pilot.press("[")
        head, body = page_text(screen)
        assert "step 25  page 5/6" in head and "Say something about 5." in body
        await pilot.press(*"[" * 9)  # past the first page: it stays there
        assert "step 5  page 1/6" in page_text(screen)[0]
        await pilot.press("]")
        assert "step 10  page 2/6" in page_text(screen)[0]

        # a page chosen stays while the run writes new steps; the newest page follows them
        write_events(run_dir, [ev.Sample(step=35, prompt="Say something about 7.", completion="7", reward=1.5)])
        await wait_for(pilot, lambda: 35 in screen.samples.by_step, what="step 35's sample")
        await pilot.pause(0.1)
        assert "step 10  page 2/7" in page_text(screen)[0]
        await pilot.press(*"]" * 6)
        assert "step 35  page 7/7" in page_text(screen)[0]
        write_events(run_dir, [ev.Sample(step=40, prompt="Say something about 8.", completion="8", reward=1.5)])
        await wait_for(pilot, lambda: 40 in screen.samples.by_step, what="step 40's sample")
        await pilot.pause(0.1)
        assert "step 40  page 8/8" in page_text(screen)[0]

        await pilot.press("v")  # back to the charts, the page kept
        assert screen.view == "chart" and screen.check_action("page", (1,)) is False


async def test_the_worst_and_the_best_of_a_step(home):
    recorded_run("grpo")
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_samples(pilot, app, 30)
        everything = sorted(s.reward for s in screen.samples.at(30))
        await pilot.press("w")
        head, body = page_text(screen)
        assert "worst 2 of 8" in head
        assert rewards_in(body) == [float(f"{r:.3g}") for r in everything[:2]]  # the lowest first
        await pilot.press("b")
        head, body = page_text(screen)
        assert "best 2 of 8" in head
        assert rewards_in(body) == [float(f"{r:.3g}") for r in everything[::-1][:2]]
        await pilot.press("[")  # the filter stays on as the pages turn
        assert "best 2 of 8" in page_text(screen)[0] and "step 25" in page_text(screen)[0]
        await pilot.press("b")  # the same key again: all of them
        assert "8 outputs" in page_text(screen)[0]
        assert "scored alike" not in page_text(screen)[0]
    run_dir = recorded_run("grpo", run_id="alike")
    write_events(run_dir, [ev.Sample(step=35, prompt="p", completion=str(i), reward=0.0, group=0) for i in range(4)])
    app = MonitorApp("demo", "alike")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_samples(pilot, app, 30)
        await wait_for(pilot, lambda: len(screen.samples.at(35)) == 4, what="step 35")
        await pilot.press("w")
        assert "worst 1 of 4  (all scored alike: no worst or best)" in page_text(screen)[0]


async def test_a_reward_error_is_shown_once_with_its_count(home):
    recorded_run("grpo")
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_samples(pilot, app, 30)
        await pilot.press("[", "[")
        head, body = page_text(screen)
        assert "step 20" in head
        message = "ValueError: cannot judge 20 (record 20)"
        assert "✖ exact failed on 3 of 8: " + message in head
        assert (head + body).count(message) == 1  # once, not on every output
        assert body.count("exact ✖") == 3  # each output it failed on is marked
        await pilot.press("[")
        head, _ = page_text(screen)
        assert "step 15" in head and "failed" not in head


async def test_a_completion_s_control_characters_are_shown_as_marks(home):
    recorded_run("grpo")
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_samples(pilot, app, 30)
        await pilot.press("[", "[", "[", "[")
        _, body = page_text(screen)
        assert "Clear ␛[2J the screen␇ and ␛[31m go red" in body
        assert "\x1b" not in body and "\x9b" not in body and "\x07" not in body


async def test_long_completions_are_cut_until_the_full_text_is_asked_for(home):
    run_dir = recorded_run("grpo")
    long = "\n".join(f"line {i}" for i in range(1, 41))
    write_events(run_dir, [ev.Sample(step=35, prompt="Say something long.", completion=long, reward=0.1)])
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_samples(pilot, app, 30)
        await wait_for(pilot, lambda: 35 in screen.samples.by_step, what="the long sample")
        _, body = page_text(screen)
        assert "line 6" in body and "line 7" not in body and "… 34 more lines (x: full text)" in body
        assert screen.check_action("full_text", ()) is True  # in the footer while some text is cut
        await pilot.press("x")
        _, body = page_text(screen)
        assert "line 40" in body and "more lines" not in body
        await pilot.press("x", "[")  # cut again; step 30's outputs are all short
        assert "line 40" not in page_text(screen)[1]
        assert screen.check_action("full_text", ()) is False


async def test_a_dpo_pair_shows_chosen_and_rejected_and_ranks_by_margin(home):
    recorded_run("dpo")
    app = MonitorApp("demo", "dpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_samples(pilot, app, 30)
        head, body = page_text(screen)
        assert "step 30  page 3/3" in head and "3 outputs" in head
        assert body.count("chosen  log-ratio") == 3 and body.count("rejected  log-ratio") == 3
        assert "I do not know." in body and "margin " in body
        samples = screen.samples.at(30)
        worst = min(samples, key=lambda s: s.chosen_logratio - s.rejected_logratio)
        await pilot.press("w")
        head, body = page_text(screen)
        assert "worst 1 of 3" in head and f"prompt  {worst.prompt}" in body and body.count("chosen ") == 1


async def test_an_sft_answer_shows_beside_its_reference(home):
    recorded_run("sft")
    app = MonitorApp("demo", "sft-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_samples(pilot, app, 30)
        head, body = page_text(screen)
        assert "step 30  page 6/6" in head and "2 outputs" in head
        assert body.count("reference") == 2 and body.count('{"kind": "book", "ok": true}') == 4
        await pilot.press("w")  # nothing scored to rank by: said, not an empty page
        assert "No output of this step has a score to rank by." in page_text(screen)[1]


async def test_before_any_sample_the_panel_says_what_will_come(home):
    recorded_run("grpo")
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.history.step == 30, what="the run")
        panel = screen.query_one(SamplesPanel)
        assert panel.render_page(None)[0].plain == "no samples yet"


def test_a_step_trained_again_shows_its_new_samples_only():
    samples = RunSamples()
    samples.add([ev.Started(), ev.Sample(step=5, completion="old a"), ev.Sample(step=5, completion="old b"),
                 ev.Sample(step=10, completion="lost with the kill")])
    samples.add([ev.Started(resumed_from="checkpoint-4"), ev.Sample(step=5, completion="new")])
    assert [s.completion for s in samples.at(5)] == ["new"]
    assert [s.completion for s in samples.at(10)] == ["lost with the kill"]  # not trained again yet


def test_ranking_uses_the_reward_then_the_scores_then_the_pair_margin():
    assert rank_value(ev.Sample(reward=0.5, scores={"a": 3.0})) == 0.5
    assert rank_value(ev.Sample(scores={"a": 1.0, "b": 0.25})) == 1.25
    assert rank_value(ev.Sample(chosen_logratio=0.5, rejected_logratio=-0.25)) == 0.75
    assert rank_value(ev.Sample(completion="unscored")) is None
    outputs = [ev.Sample(reward=float(r)) for r in (3, 1, 4, 1, 5, 9, 2, 6)]
    assert [s.reward for s in picked(outputs, "worst")] == [1.0, 1.0]
    assert [s.reward for s in picked(outputs, "best")] == [9.0, 6.0]
    errors = errors_of([ev.Sample(errors={"f": "boom 1"}), ev.Sample(errors={"f": "boom 2", "g": "x"}),
                        ev.Sample(errors={"f": "boom 1"})])
    assert [(e.function, e.message, e.count, e.messages) for e in errors] == [("f", "boom 1", 3, 2), ("g", "x", 1, 1)]


async def test_the_footer_fits_80_columns_on_a_running_run_most_used_keys_first(home):
    """At 80x24 the samples take the whole width and height, and every key of the footer is on screen."""
    run_dir = recorded_run("grpo")
    lines = [line for line in (run_dir / "events.jsonl").read_text().splitlines() if '"finished"' not in line]
    (run_dir / "events.jsonl").write_text("\n".join(lines) + "\n")
    (run_dir / "pid").write_text(f"{os.getpid()}\n")
    (run_dir / "heartbeat").write_text(f"{time.time()}\n")
    hold_here(run_dir)
    long = "\n".join("long" * 9)
    write_events(run_dir, [ev.Sample(step=30, prompt="Say it at length.", completion=long, reward=2.0)])
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_samples(pilot, app, 30)
        await wait_for(pilot, lambda: screen.info is not None and screen.info.alive, what="the live state")
        await pilot.pause(0.3)
        assert not screen.query_one("#side").display and not screen.query_one("#log").display
        assert screen.query_one(SamplesPanel).region.width == 80
        shown = [key for key in screen.query(FooterKey) if key.region.width]
        keys = [key.key_display or key.key for key in shown]
        assert keys[:2] == ["[", "]"] and keys[-3:] == ["s", "esc", "^p"]  # ^p: the palette
        assert "x" in keys and "e" not in keys and "r" not in keys  # x: text is cut; nothing to export yet
        assert all(key.region.right <= 80 for key in shown)
        await pilot.press("v")
        await pilot.pause(0.3)
        assert screen.query_one("#side").display  # the charts keep the figures beside them
        shown = [key for key in screen.query(FooterKey) if key.region.width]
        assert [key.key_display or key.key for key in shown] == ["[", "]", "m", "v", "s", "esc", "^p"]
        assert all(key.region.right <= 80 for key in shown)


def test_a_long_error_shows_its_head_once():
    traceback = "Traceback (most recent call last):\n  File \"rewards.py\", line 3\nKeyError: 'answer'\n" * 3
    errors = errors_of([ev.Sample(errors={"exact": traceback}), ev.Sample(errors={"exact": traceback})])
    (line,) = error_lines(errors, 4)
    assert line.plain.startswith("✖ exact failed on 2 of 4: Traceback (most recent call last):\n  File")
    assert line.plain.count("\n") == 1  # its first two lines
