"""Two real reward runs on the tiny model, one taught the opposite of the other: the scorer child
holding both gives each run's own scores, and a `disagree` session shows the prompt they disagree
on most first, saying by how much."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, write_jsonl
from tests.e2e.test_scoring import PAIRS, TRAIN
from tests.ui.test_rank import SIZE, RankApp, make_session, showing, wait_for
from tests.unit.test_store import hold_here, release_held  # noqa: F401 - a fixture
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.ranking import candidates
from workbench.ranking import order as ordering
from workbench.ranking.scoring import Scorer, disagreeing_runs
from workbench.run.spec import JobSpec

pytestmark = pytest.mark.e2e

SESSION = "20990101-000000-sample"
ANSWERS = ["4 plus one is 5.", "I do not know.", "Five.", "It is 5, since 4 + 1 = 5.", "No idea, sorry.",
           "Perhaps six?", "5", "The answer is five."]
# groups of four answers to one prompt: their scores by the two runs decide which the session shows first
POOL = [(f"What is {i} plus one?", [ANSWERS[(i + k * 3) % len(ANSWERS)] for k in range(4)]) for i in range(8)]


@pytest.fixture(scope="module")
def two_reward_runs(tiny_model, tmp_path_factory):
    """(project, older run, newer run): the newer learnt the swapped pairs (the rejected answer preferred)."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("disagree-home")
        mp.setenv("WORKBENCH_HOME", str(home))
        projects.create("rm2", base_model=str(tiny_model))
        data = tmp_path_factory.mktemp("pairs")
        import_file("rm2", write_jsonl(data / "pairs.jsonl", PAIRS))
        swapped = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in PAIRS]
        import_file("rm2", write_jsonl(data / "swapped.jsonl", swapped))
        runs = []
        for dataset in ("pairs", "swapped"):
            result = cli("train", "rm2", "--dataset", dataset, *TRAIN)
            assert result.returncode == 0, result.stderr
            runs.append(result.stdout.splitlines()[0].strip())
        yield "rm2", runs[0], runs[1]


def single_scores(project: str, run_id: str) -> list[list[float]]:
    with Scorer(project, run_id) as scorer:
        scorer.wait_ready(timeout=240)
        return [scorer.score(prompt, texts, timeout=120) for prompt, texts in POOL]


async def test_a_disagree_session_shows_the_most_disputed_prompt_first(two_reward_runs):
    project, older, newer = two_reward_runs
    assert disagreeing_runs(project) == (newer, older)
    a, b = single_scores(project, newer), single_scores(project, older)
    with Scorer(project, newer, older) as both:
        both.wait_ready(timeout=240)
        for (prompt, texts), first, second in zip(POOL, a, b):
            got = both.score_both(prompt, texts, timeout=120)
            assert got[0] == pytest.approx(first, abs=1e-5) and got[1] == pytest.approx(second, abs=1e-5)

    # three groups for the session: the most disputed of the pool last, two it beats before it
    discord = [ordering.discord(x, y) for x, y in zip(a, b)]
    print("discord of the pool:", [f"{d:.2f}" for d in discord])
    top = max(range(len(POOL)), key=lambda i: discord[i])
    lower = [i for i in range(len(POOL)) if discord[i] < discord[top]][:2]
    assert len(lower) == 2, f"the two runs disagree on every group alike: {discord}"
    chosen = [*lower, top]

    run_dir = make_session(project, SESSION, prompts=[POOL[i][0] for i in chosen])
    spec = JobSpec.load(run_dir)
    spec.params.update(order="disagree", reward_runs=f"{newer},{older}")
    spec.save(run_dir)
    for index, i in enumerate(chosen):
        candidates.write_group(run_dir, index, 0, POOL[i][0], [{"text": t, "source": "base"} for t in POOL[i][1]])

    async with RankApp(project, SESSION).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        await wait_for(pilot, lambda: len(screen.second) == 3, timeout=300, what="both runs' scores of 3 groups")
        await pilot.pause(0.2)
        if screen.group["index"] != 2:  # picked again when the first scores came: the cards stay until a decision
            assert screen.group["index"] == 0
            assert str(screen.query_one("#prompt-box").border_title) == (
                f"prompt · the reward runs disagree on {discord[chosen[0]]:.0%} of its pairs")
            await pilot.press("s")
        screen = await showing(pilot, 2)
        assert screen.reward_run == newer
        assert str(screen.query_one("#prompt-box").border_title) == (
            f"prompt · the reward runs disagree on {discord[top]:.0%} of its pairs")
        assert screen.scores[(2, 0)] == pytest.approx(a[top], abs=1e-5)
        assert screen.second[(2, 0)] == pytest.approx(b[top], abs=1e-5)
        if __import__("os").environ.get("WB_SHOT"):
            pilot.app.save_screenshot("/tmp/wb12/rank-disagree.svg")
