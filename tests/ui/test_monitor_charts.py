"""The monitor's charts: chosen per method on recorded runs, switched with keys and the palette, any
metric picked from a list, and a long run drawn quickly."""

from __future__ import annotations

import json
import math
import time

from textual.command import CommandPalette

from screens.commands import ScreenCommands
from screens.metric_picker import MetricPicker
from screens.run_charts import EVAL_COLOR, charts_for, reward_weights
from screens.run_metrics import RunMetrics, Series
from screens.widgets.metric_chart import MetricChart, number, thin
from tests.ui.recorded import recorded_run
from tests.ui.world import charts_drawn
from tests.ui.test_monitor import SIZE, MonitorApp, wait_for, write_events
from workbench.run import events as ev

RL_CHARTS = ["reward", "reward per function", "KL", "entropy", "completion length", "zero-spread groups",
             "clip fraction", "loss", "learning rate", "grad norm"]


async def open_run(pilot, app, steps: int):
    screen = app.screen
    await wait_for(pilot, lambda: screen.history.step == steps and screen.method, what=f"step {steps}")
    await charts_drawn(pilot)
    return screen


def chart_of(screen) -> MetricChart:
    return screen.query_one(MetricChart)


async def test_a_grpo_run_charts_reward_per_function_kl_and_length(home):
    recorded_run("grpo")
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, app, 30)
        assert [chart.name for chart in screen.charts()] == RL_CHARTS
        chart = chart_of(screen)
        assert chart.chart.name == "reward"
        last = screen.metrics.get("reward").last
        spread = screen.metrics.get("reward_std").last
        assert chart.title == f"mean {number(last)} ± {number(spread)}"
        assert chart.border_title == "reward · band: ± std" and "1/10" in chart.border_subtitle

        await pilot.press("]")
        await charts_drawn(pilot)
        functions = chart.chart
        assert functions.name == "reward per function"
        assert [(line.label, line.scale) for line in functions.lines] == [("exact ×0.5", 0.5), ("length", 1.0)]
        length = screen.metrics.get("rewards/length/mean").last
        assert chart.title == f"exact ×0.5 0, length {number(length)}"
        assert "weighted" in chart.border_title

        await pilot.press("3")
        await charts_drawn(pilot)
        assert chart.chart.name == "KL" and chart.title.startswith("KL 1.308")
        await pilot.press("[", "[", "[")  # back past the first to the last
        await charts_drawn(pilot)
        assert chart.chart.name == "grad norm"
        await pilot.press("5")
        await charts_drawn(pilot)
        assert chart.chart.name == "completion length"
        assert chart.title == "mean 8, clipped 100.0%"  # 8-token completions, all cut


async def test_a_ppo_run_adds_value_loss_and_approx_kl(home):
    recorded_run("ppo")
    app = MonitorApp("demo", "ppo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, app, 12)
        names = [chart.name for chart in screen.charts()]
        assert names == ["reward", "reward per function", "KL", "entropy", "completion length", "clip fraction",
                         "value loss", "approx KL", "loss", "learning rate", "grad norm"]
        per_function = screen.charts()[1]
        assert [line.key for line in per_function.lines] == ["reward/exact", "reward/length"]


async def test_a_dpo_run_charts_reward_accuracy_chosen_rejected_and_margin(home):
    recorded_run("dpo")
    app = MonitorApp("demo", "dpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, app, 30)
        assert [chart.name for chart in screen.charts()] == [
            "loss", "reward accuracy", "chosen vs rejected", "margin", "learning rate", "grad norm"]
        chart = chart_of(screen)
        await pilot.press("2")
        await charts_drawn(pilot)
        assert chart.title == "train 100.0%, eval 100.0%"  # a share reads as one
        await pilot.press("]")
        await charts_drawn(pilot)
        chosen, rejected, eval_chosen = (screen.metrics.get(k).last for k in (
            "rewards/chosen", "rewards/rejected", "eval/rewards/chosen"))
        # four lines' values do not fit: those that fit, then an ellipsis (not no title at all)
        assert chart.title == \
            f"chosen {number(chosen)}, rejected {number(rejected)}, eval chosen {number(eval_chosen)} …"
        assert len(chart.title) <= chart.size.width - 2
        assert [line.label for line in chart.chart.lines] == ["chosen", "rejected", "eval chosen", "eval rejected"]


async def test_an_sft_run_charts_loss_with_its_evaluations_and_token_accuracy(home):
    recorded_run("sft")
    app = MonitorApp("demo", "sft-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, app, 30)
        assert [chart.name for chart in screen.charts()] == [
            "loss", "learning rate", "grad norm", "token accuracy", "tokens/s"]
        loss = screen.charts()[0]
        assert [(line.key, line.points) for line in loss.lines] == [("loss", False), ("eval/loss", True)]
        assert len(screen.metrics.get("eval/loss")) == 6  # an evaluation every 5 steps
        assert loss.lines[1].color == EVAL_COLOR
        train, evaluated = screen.metrics.get("loss").last, screen.metrics.get("eval/loss").last
        assert chart_of(screen).title == f"train {number(train)}, eval {number(evaluated)}"


async def test_any_logged_metric_can_be_picked_from_the_list_and_the_palette_names_the_charts(home):
    recorded_run("grpo")
    app = MonitorApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, app, 30)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricPicker), what="the metric list")
        picker = app.screen
        assert "step_time" in picker.names and "rewards/length/std" in picker.names  # all that came
        await pilot.press(*"step tim")
        await pilot.pause(0.2)
        listed = picker.query_one("#metric-list")
        assert listed.option_count == 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, what="back to the monitor")
        await charts_drawn(pilot)
        chart = chart_of(screen)
        assert chart.chart.name == "step_time"
        assert chart.title.startswith("step_time ")
        assert "11/11" in chart.border_subtitle  # after the method's own charts
        await pilot.press("]")  # and the keys cycle through it
        await charts_drawn(pilot)
        assert chart.chart.name == "reward"

        commands = {name: callback for name, _, callback in screen.palette_commands()}
        assert "Chart: KL" in commands and "Chart: step_time" in commands
        commands["Chart: KL"]()
        await charts_drawn(pilot)
        assert chart.chart.name == "KL"

        await pilot.press("v")  # the samples: chart keys and commands step aside
        assert screen.check_action("chart", (1,)) is False and screen.palette_commands() == []


async def test_an_escape_from_the_list_keeps_the_chart(home):
    recorded_run("dpo")
    app = MonitorApp("demo", "dpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, app, 30)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricPicker), what="the metric list")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back to the monitor")
        assert chart_of(screen).chart.name == "loss" and screen.picked == ""


def long_run(run_dir, steps: int) -> None:
    """A GRPO-like events file of `steps` logs, written as the worker writes them."""
    lines = [json.dumps(ev.Started(pid=1, method="grpo", time=1000.0).to_dict())]
    for step in range(1, steps + 1):
        reward = 0.5 + 0.4 * math.sin(step / 2000) + (0.3 if step % 997 == 0 else 0.0)
        lines.append(json.dumps(ev.Log(step=step, total_steps=steps, loss=0.01, lr=1e-5, time=1000.0 + step,
                                       metrics={"reward": reward, "reward_std": 0.1, "kl": step / steps,
                                                "rewards/format/mean": reward / 2,
                                                "rewards/answer/mean": reward / 2}).to_dict()))
    (run_dir / "events.jsonl").write_text("\n".join(lines) + "\n")


async def test_a_run_of_20000_logs_keeps_every_point_and_draws_quickly(home, monkeypatch):
    run_dir = recorded_run("grpo", run_id="long")  # a GRPO run's job.toml, and its events replaced:
    long_run(run_dir, 20_000)
    app = MonitorApp("demo", "long")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        started = time.perf_counter()
        await wait_for(pilot, lambda: screen.history.step == 20_000, timeout=60, what="20k steps read")
        print(f"20000 logs read and folded in {time.perf_counter() - started:.2f} s")
        assert len(screen.metrics.get("reward")) == 20_000  # every point kept
        chart = chart_of(screen)
        assert chart.chart.name == "reward"
        handed: list[int] = []  # how many points each line handed to plotext had
        plot = chart.plt.plot
        monkeypatch.setattr(chart.plt, "plot", lambda xs, ys, **kw: (handed.append(len(xs)), plot(xs, ys, **kw)))
        started = time.perf_counter()
        for _ in range(3):
            chart._draw()
            chart.plt.build()
        per_draw = (time.perf_counter() - started) / 3
        print(f"a draw of 20000 points: {per_draw * 1000:.0f} ms")
        assert per_draw < 2.0, f"{per_draw:.3f} s a draw"  # a gross regression only: the figure is in the README
        limit = 2 * chart.size.width
        assert len(handed) == 9 and all(limit / 2 < n <= limit for n in handed)  # mean, band low, band high
        await pilot.press("2")  # two functions, 20000 points each
        await charts_drawn(pilot)
        handed.clear()
        started = time.perf_counter()
        chart._draw()
        chart.plt.build()
        assert time.perf_counter() - started < 2.0  # a gross regression only (a loaded CI machine)
        assert len(handed) == 2 and all(n <= limit for n in handed)


def test_thinning_keeps_the_trend_and_a_band_keeps_its_extremes():
    steps = list(range(1, 20_001))
    values = [float(s % 100) for s in steps]  # a saw: every bucket of 100 averages 49.5
    xs, ys = thin(steps, values, 200)
    assert len(xs) == 200 and xs[0] == 50.5 and all(y == 49.5 for y in ys)
    _, lows = thin(steps, values, 200, "min")
    _, highs = thin(steps, values, 200, "max")
    assert set(lows) == {0.0} and set(highs) == {99.0}  # a min/max band keeps each bucket's extremes
    assert thin([1, 2], [3.0, 4.0], 10) == ([1, 2], [3.0, 4.0])


def test_a_step_trained_again_takes_its_new_value_and_order_is_kept():
    series = Series()
    for step in (1, 2, 3, 5):
        series.put(step, float(step))
    series.put(3, 30.0)  # a resumed run trained step 3 again
    series.put(4, 4.0)  # a step that came late
    assert list(series.steps) == [1, 2, 3, 4, 5] and list(series.values) == [1.0, 2.0, 30.0, 4.0, 5.0]
    series.put(6, float("nan"))
    assert series.last == 5.0  # the latest finite value


def test_charts_appear_as_their_metrics_come():
    metrics = RunMetrics()
    assert [c.name for c in charts_for("grpo", metrics)] == ["loss"]  # before the first log
    metrics.add([ev.Log(step=1, loss=0.0, metrics={"reward": 0.5})])
    assert [c.name for c in charts_for("grpo", metrics)] == ["reward", "loss"]
    metrics.add([ev.Log(step=2, loss=0.0, metrics={"reward": 0.6, "kl": 0.1, "frac_reward_zero_std": 0.25})])
    assert [c.name for c in charts_for("grpo", metrics)] == ["reward", "KL", "zero-spread groups", "loss"]
    metrics.add([ev.Log(step=3, loss=0.0, metrics={"reward": 0.6, "reward_errors/exact": 3.0})])
    errors = charts_for("grpo", metrics)[1]
    assert errors.name == "reward errors" and [line.label for line in errors.lines] == ["exact"]
    metrics.add([ev.Eval(step=2, loss=0.3, metrics={"mean_token_accuracy": 0.5})])
    assert metrics.get("eval/mean_token_accuracy").last == 0.5
    assert [c.name for c in charts_for("sft", metrics)] == ["loss", "token accuracy"]


async def test_a_diverging_run_says_how_many_points_were_not_drawn(home):
    run_dir = recorded_run("sft", run_id="nan")
    write_events(run_dir, [ev.Log(step=31, total_steps=40, loss=float("nan")),
                           ev.Log(step=32, total_steps=40, loss=float("inf"))])
    app = MonitorApp("demo", "nan")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, app, 32)
        assert chart_of(screen).title.startswith("2 NaN/inf not drawn, train 10.7")
        assert screen.metrics.get("loss").last == screen.metrics.get("loss").at(30)  # the last finite one


def test_the_weights_come_from_the_run_s_rewards_and_its_reward_model():
    assert reward_weights({"rewards": "format:2,exact", "reward_model": "run:rm", "reward_model_weight": 0.5}) == \
        {"format": 2.0, "exact": 1.0, "reward_model": 0.5}
    assert reward_weights({"rewards": "", "reward_model": "", "reward_model_weight": 3.0}) == {}
    assert reward_weights({"rewards": "bad name:x"}) == {}  # refused by the worker too: drawn unweighted


class PaletteApp(MonitorApp):
    COMMANDS = MonitorApp.COMMANDS | {ScreenCommands}


async def test_the_command_palette_opens_a_chart_by_name(home):
    recorded_run("grpo")
    app = PaletteApp("demo", "grpo-run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, app, 30)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"chart: entropy")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, what="back to the monitor")
        await wait_for(pilot, lambda: chart_of(screen).chart.name == "entropy", what="the entropy chart")


def test_a_reward_model_run_charts_its_accuracy_margin_and_score_range():
    """TRL's RewardTrainer logs accuracy, margin and min/mean/max_reward."""
    metrics = RunMetrics()
    metrics.add([ev.Log(step=1, loss=0.7, metrics={"accuracy": 0.5, "margin": 0.1, "min_reward": -1.0,
                                                   "mean_reward": 0.0, "max_reward": 1.5})])
    charts = charts_for("reward", metrics)
    assert [c.name for c in charts] == ["loss", "accuracy", "margin", "score"]
    score = charts[3].lines[0]
    assert (score.key, score.low, score.high) == ("mean_reward", "min_reward", "max_reward")
