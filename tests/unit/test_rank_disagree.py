"""The `disagree` order of a ranking session: which two reward runs it compares, and its refusals."""

from __future__ import annotations

import pytest

from screens.rank.feed import session_order
from screens.rank.sessions import order_choices
from tests.unit.test_cli import one_line_error
from tests.unit.test_store import make_run
from workbench import locations
from workbench import project as projects
from workbench.cli.main import main
from workbench.ranking import order as ordering
from workbench.ranking.scoring import ScoringError, disagreeing_runs, reward_runs, session_values
from workbench.run import events as ev
from workbench.run.spec import JobSpec


def reward_run(project: str, run_id: str, completed: bool = True, weights: bool = True) -> None:
    """A reward run folder as the worker leaves it: its spec, its events, its adapter."""
    end = ev.Finished(reason="completed" if completed else "stopped", step=3, output="adapter")
    run_dir = make_run(project, run_id, [ev.Started(pid=1), end])
    spec = JobSpec.load(run_dir)
    spec.method = "reward"
    spec.save(run_dir)
    if weights:
        (run_dir / "adapter").mkdir()


@pytest.fixture
def alpha(home):
    projects.create("alpha")
    return "alpha"


def test_the_newest_two_completed_reward_runs_are_compared_unless_two_are_named(alpha):
    reward_run(alpha, "20250101-000000-reward")
    reward_run(alpha, "20250102-000000-reward", completed=False)  # stopped: no final model
    reward_run(alpha, "20250103-000000-reward", weights=False)
    with pytest.raises(ScoringError, match=r"needs two completed reward runs with a model; project 'alpha' has 1\."):
        disagreeing_runs(alpha)
    reward_run(alpha, "20250104-000000-reward")
    reward_run(alpha, "20250105-000000-reward")
    assert reward_runs(alpha) == ["20250101-000000-reward", "20250104-000000-reward", "20250105-000000-reward"]
    assert disagreeing_runs(alpha) == ("20250105-000000-reward", "20250104-000000-reward")
    assert disagreeing_runs(alpha, " 20250101-000000-reward, 20250105-000000-reward") == (
        "20250101-000000-reward", "20250105-000000-reward")
    with pytest.raises(ScoringError, match="'20250102-000000-reward' is not a completed reward run with a model"):
        disagreeing_runs(alpha, "20250101-000000-reward,20250102-000000-reward")
    with pytest.raises(ScoringError, match="names two different reward runs as ID,ID"):
        disagreeing_runs(alpha, "20250101-000000-reward")


def test_a_new_session_records_what_its_order_needs(alpha):
    assert session_values(alpha, {"order": "session", "n": "4"}) == {"order": "session", "n": "4"}
    assert session_values(alpha, {"order": "uncertain"}) == {"order": "uncertain", "ahead": str(ordering.ACTIVE_AHEAD)}
    with pytest.raises(ScoringError, match="has 0"):
        session_values(alpha, {"order": "disagree"})
    reward_run(alpha, "20250101-000000-reward")
    reward_run(alpha, "20250102-000000-reward")
    assert session_values(alpha, {"order": "disagree", "ahead": "12"}) == {
        "order": "disagree", "ahead": "12", "reward_runs": "20250102-000000-reward,20250101-000000-reward"}


def test_the_form_offers_disagreement_only_with_two_reward_runs():
    offered, why = order_choices(["r1"])
    assert [value for _, value in offered] == ["session", "uncertain"]
    assert why == "Disagreement first needs two completed reward runs with a model (this project has only r1)."
    assert "has none" in order_choices([])[1]
    offered, why = order_choices(["r1", "r2"])
    assert [value for _, value in offered] == ["session", "uncertain", "disagree"] and why == ""


def test_the_sample_command_refuses_disagree_in_one_line(alpha, capsys):
    reward_run(alpha, "20250101-000000-reward")
    assert main(["sample", alpha, "--prompt", "Hello?", "--order", "disagree"]) == 1
    err = one_line_error(capsys)
    assert "needs two completed reward runs with a model; project 'alpha' has 1" in err
    assert not list(locations.runs_dir(alpha).glob("*sample*"))  # nothing was started
    assert main(["sample", alpha, "--prompt", "Hello?", "--order", "disagree",
                 "--set", "reward_runs=20250101-000000-reward,nope"]) == 1
    assert "'nope' is not a completed reward run" in one_line_error(capsys)


def test_a_session_says_its_order_and_runs(alpha, tmp_path):
    run_dir = make_run(alpha, "20250101-000000-sample", [ev.Started(pid=1)])
    spec = JobSpec.load(run_dir)
    assert session_order(run_dir) == ("session", "")
    spec.params.update(order="disagree", reward_runs="a,b")
    spec.save(run_dir)
    assert session_order(run_dir) == ("disagree", "a,b")
    spec.params["order"] = "loudest"
    spec.save(run_dir)
    assert session_order(run_dir) == ("session", "")


def test_disagreement_picks_the_highest_discord_among_groups_both_runs_scored():
    a = {0: [1.0, 2.0, 3.0], 1: [1.0, 2.0, 3.0], 2: [1.0, 2.0, 3.0], 3: [3.0, 2.0, 1.0]}
    b = {0: [1.0, 2.0, 3.0], 1: [2.0, 1.0, 0.0], 2: [2.0, 1.0, 3.0]}  # 3 is scored by one run only
    pick = ordering.choose([0, 1, 2, 3], "disagree", a, b)
    why = "the reward runs disagree on 100% of its pairs (1 more being scored)"  # 3: scored by one run only
    assert (pick.index, pick.value, pick.why) == (1, 1.0, why)
    assert ordering.choose([0, 2], "disagree", a, b).why == "the reward runs disagree on 33% of its pairs"
    assert ordering.choose([3], "disagree", a, b).why == "in session order: no group is scored by both runs yet"
    # the scores of a group's latest round count, not an earlier round's
    groups = {0: {"round": 1}, 1: {"round": 0}}
    pick = ordering.choose_latest([0, 1], "disagree", groups, {(0, 0): [1, 2], (0, 1): [1, 2], (1, 0): [1, 2]},
                                  {(0, 0): [2, 1], (0, 1): [1, 2], (1, 0): [1, 2]})
    assert (pick.index, pick.value) == (0, 0.0)
    pick = ordering.choose_latest([0, 1], "disagree", groups, {(0, 0): [1, 2], (1, 0): [1, 2]},
                                  {(0, 0): [2, 1], (1, 0): [2, 1]})
    assert (pick.index, pick.value) == (1, 1.0)
