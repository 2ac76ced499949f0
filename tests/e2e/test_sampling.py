"""Sampling sessions in the real worker on the tiny model: groups, the pause ahead of the ranking,
resample requests, blind A/B between two models, and the end of a session."""

from __future__ import annotations

import pytest

from tests.conftest import CHAT_RECORDS
from tests.e2e.conftest import cli, events, of_type, wait_for
from workbench import locations
from workbench.jobs import store
from workbench.ranking import candidates as cands
from workbench.ranking import rankings as ranking
from workbench.run import events as ev

pytestmark = pytest.mark.e2e

FAST = ["--set", "max_new_tokens=8", "--set", "idle_minutes=3"]


def start(project: str, *args: str) -> str:
    result = cli("sample", project, *FAST, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0].strip()


def rank(project: str, session: str, group: dict, order=None) -> None:
    n = len(group["candidates"])
    ranking.commit(project, ranking.make_record(group["prompt"], group["candidates"], list(order or range(n)),
                                                by="person", session=session, index=group["index"],
                                                round=group["round"]))


def test_a_session_samples_ahead_pauses_serves_resamples_and_ends_when_ranked(tiny_project):
    run_id = start(tiny_project, "--set", "n=3", "--set", "prompts=4", "--set", "ahead=2")
    run_dir = locations.run_dir(tiny_project, run_id)

    # Two groups ahead of the ranking, then a pause.
    wait_for(lambda: any("Waiting for the ranking" in e.message for e in of_type(events(tiny_project, run_id),
                                                                                   ev.Status)), what="the pause")
    groups = cands.read_groups(run_dir)
    assert [(g["index"], g["round"]) for g in groups] == [(0, 0), (1, 0)]
    assert cands.total_prompts(run_dir) == 4 and not cands.session_done(run_dir)
    assert groups[0]["prompt"] == CHAT_RECORDS[0]["messages"][:-1]  # a chat's prompt: before its answer
    assert all(len(g["candidates"]) == 3 and {c["source"] for c in g["candidates"]} == {"base"} for g in groups)
    assert all(isinstance(c["text"], str) for g in groups for c in g["candidates"])
    assert not groups[0]["ab"]

    # Ranking one lets it sample one more, and no further.
    rank(tiny_project, run_id, groups[0])
    wait_for(lambda: 2 in cands.latest_groups(run_dir), what="the third group")
    wait_for(lambda: "(3/4 sampled)" in of_type(events(tiny_project, run_id), ev.Status)[-1].message,
             what="the second pause")
    assert sorted(cands.latest_groups(run_dir)) == [0, 1, 2]

    # A resample request is served while paused: round 1 of prompt 1.
    cands.request_resample(run_dir, 1)
    wait_for(lambda: cands.latest_groups(run_dir)[1]["round"] == 1, what="the resampled group")
    assert cands.pending_requests(run_dir) == []
    resampled = cands.latest_groups(run_dir)[1]
    assert resampled["prompt"] == groups[1]["prompt"]

    # Ranking the rest ends the session as completed.
    rank(tiny_project, run_id, resampled, order=[2, 0, 1])
    rank(tiny_project, run_id, cands.latest_groups(run_dir)[2])
    wait_for(lambda: 3 in cands.latest_groups(run_dir), what="the last group")
    assert cands.session_done(run_dir)
    rank(tiny_project, run_id, cands.latest_groups(run_dir)[3])
    info = store.wait(tiny_project, run_id, timeout=120)
    assert info.state == "completed"
    logs = of_type(events(tiny_project, run_id), ev.Log)
    assert [log.step for log in logs if log.metrics["round"] == 0] == [1, 2, 3, 4]
    assert all(log.total_steps == 4 and log.metrics["seconds_per_group"] > 0 for log in logs)
    assert [s.id for s in cands.sessions(tiny_project)] == [run_id]


def test_a_blind_ab_session_gives_one_answer_from_each_model(tiny_project):
    trained = cli("train", tiny_project, "--wait", "--set", "max_steps=1", "--set", "batch_size=2",
                  "--set", "max_length=64", "--set", "eval_steps=0", "--set", "save_steps=100")
    assert trained.returncode == 0, trained.stderr
    sft_run = trained.stdout.splitlines()[0].strip()

    run_id = start(tiny_project, "--prompt", "Name a colour.", "--prompt", "Name a fruit.", "--dataset", "prompts",
                   "--set", f"model_b=run:{sft_run}", "--set", "prompts=2", "--set", "ahead=2", "--set", "n=5")
    run_dir = locations.run_dir(tiny_project, run_id)
    wait_for(lambda: cands.session_done(run_dir), what="both A/B groups")
    groups = cands.read_groups(run_dir)
    assert [g["prompt"] for g in groups] == ["Name a colour.", "Name a fruit."]  # typed prompts, in order
    for group in groups:
        assert group["ab"] and len(group["candidates"]) == 2
        assert sorted(c["source"] for c in group["candidates"]) == sorted(["base", sft_run])
    assert cands.session_info(run_dir)["models"] == ["base", sft_run]

    for group in groups:  # the person prefers the fine-tuned model's answer both times
        winner = next(i for i, c in enumerate(group["candidates"]) if c["source"] == sft_run)
        rank(tiny_project, run_id, group, order=[winner, 1 - winner])
    assert store.wait(tiny_project, run_id, timeout=120).state == "completed"
    rate = ranking.ab_win_rates(ranking.read(tiny_project))[tuple(sorted(["base", sft_run]))]
    assert (rate.games, rate.rate) == (2, 1.0 if rate.model == sft_run else 0.0)


def test_a_stop_ends_a_waiting_session_at_once(tiny_project):
    run_id = start(tiny_project, "--set", "n=2", "--set", "prompts=3", "--set", "ahead=1")
    run_dir = locations.run_dir(tiny_project, run_id)
    wait_for(lambda: cands.read_groups(run_dir), what="the first group")
    store.stop(tiny_project, run_id)
    info = store.wait(tiny_project, run_id, timeout=60)
    assert info.state == "stopped"
    assert [g["index"] for g in cands.read_groups(run_dir)] == [0]


def test_an_ab_session_refuses_the_same_model_twice(tiny_project):
    run_id = start(tiny_project, "--set", "model_b=base")
    info = store.wait(tiny_project, run_id, timeout=120)
    assert info.state == "failed" and "both name 'base'" in info.message
