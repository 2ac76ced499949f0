"""A sampling session's files: groups, resample rounds and requests, typed prompts, the judge template."""

from __future__ import annotations

import json

import pytest

from workbench import project as projects
from workbench.ranking import candidates as cands
from workbench.ranking import judge_params
from workbench.ranking.judge import expected_grade, order_by_score

GROUP = [{"text": "one", "source": "base"}, {"text": "two", "source": "base"}]


def test_groups_are_read_back_and_a_half_written_line_is_skipped(tmp_path):
    cands.write_group(tmp_path, 0, 0, "Q0", GROUP)
    cands.write_group(tmp_path, 1, 0, [{"role": "user", "content": "Q1"}], GROUP, ab=True)
    with open(tmp_path / cands.CANDIDATES, "a", encoding="utf-8") as f:
        f.write('{"index": 2, "round": 0, "prompt": "cut')  # the sampler died mid-line
    groups = cands.read_groups(tmp_path)
    assert [(g["index"], g["round"], g["ab"]) for g in groups] == [(0, 0, False), (1, 0, True)]
    assert groups[1]["prompt"] == [{"role": "user", "content": "Q1"}]
    cands.write_group(tmp_path, 2, 0, "Q2", GROUP)  # the next line starts on its own line
    assert [g["index"] for g in cands.read_groups(tmp_path)] == [0, 1, 2]


def test_the_latest_round_of_each_prompt_wins(tmp_path):
    cands.write_group(tmp_path, 0, 0, "Q0", GROUP)
    cands.write_group(tmp_path, 1, 0, "Q1", GROUP)
    cands.write_group(tmp_path, 0, 1, "Q0", [{"text": "three", "source": "base"}, GROUP[0]])
    latest = cands.latest_groups(tmp_path)
    assert {i: g["round"] for i, g in latest.items()} == {0: 1, 1: 0}
    assert latest[0]["candidates"][0]["text"] == "three"


def test_a_request_is_pending_until_a_newer_round_answers_it(tmp_path):
    cands.write_prompts(tmp_path, ["Q0", "Q1", "Q2"])
    cands.write_group(tmp_path, 0, 0, "Q0", GROUP)
    cands.write_group(tmp_path, 1, 0, "Q1", GROUP)
    assert cands.pending_requests(tmp_path) == []
    cands.request_resample(tmp_path, 1)
    cands.request_resample(tmp_path, 0)
    cands.request_resample(tmp_path, 1)  # asked twice: two fresh groups
    cands.request_resample(tmp_path, 2)  # no group yet: waits for its first one
    assert cands.pending_requests(tmp_path) == [1, 0]
    cands.write_group(tmp_path, 1, 1, "Q1", GROUP)
    assert cands.pending_requests(tmp_path) == [0, 1]  # the second request for 1 came after the one for 0
    cands.write_group(tmp_path, 1, 2, "Q1", GROUP)
    cands.write_group(tmp_path, 0, 1, "Q0", GROUP)
    assert cands.pending_requests(tmp_path) == []
    cands.write_group(tmp_path, 2, 0, "Q2", GROUP)
    assert cands.pending_requests(tmp_path) == [2]


def test_a_request_for_a_prompt_outside_the_session_is_refused(tmp_path):
    cands.write_prompts(tmp_path, ["Q0", "Q1"])
    with pytest.raises(cands.SessionError, match="no prompt 2"):
        cands.request_resample(tmp_path, 2)


def test_the_session_is_done_once_every_prompt_has_a_group(tmp_path):
    assert cands.total_prompts(tmp_path) is None and not cands.session_done(tmp_path)
    cands.write_prompts(tmp_path, ["Q0", "Q1"], models=["base"], n=3, ab=False)
    assert cands.total_prompts(tmp_path) == 2
    assert cands.session_info(tmp_path)["n"] == 3
    cands.write_group(tmp_path, 1, 0, "Q1", GROUP)
    cands.write_group(tmp_path, 1, 1, "Q1", GROUP)
    assert not cands.session_done(tmp_path)
    cands.write_group(tmp_path, 0, 0, "Q0", GROUP)
    assert cands.session_done(tmp_path)


def test_typed_prompts_make_a_new_dataset_each_time(home):
    projects.create("p")
    assert cands.save_typed_prompts("p", ["Write a haiku.", "  ", "Name three rivers."]) == "prompts"
    assert cands.save_typed_prompts("p", ["Say hello in French."]) == "prompts-2"
    project = projects.load("p")
    entry = project.dataset("prompts")
    assert (entry.kind, entry.records, entry.split) == ("prompt", 2, "train")
    rows = [json.loads(line) for line in project.dataset_path("prompts").read_text().splitlines()]
    assert rows == [{"prompt": "Write a haiku."}, {"prompt": "Name three rivers."}]
    rows = [json.loads(line) for line in project.dataset_path("prompts-2").read_text().splitlines()]
    assert rows == [{"prompt": "Say hello in French."}]
    with pytest.raises(cands.SessionError, match="empty"):
        cands.save_typed_prompts("p", ["", " "])


def test_sessions_are_the_sample_runs(home):
    projects.create("p")
    assert cands.sessions("p") == []
    with pytest.raises(cands.SessionError, match="no sampling session"):
        cands.newest_session("p")


def test_the_judge_template_is_created_once_and_must_hold_its_placeholders(home):
    projects.create("p")
    text = judge_params.judging_template("p")
    assert text == judge_params.DEFAULT_TEMPLATE
    assert (projects.load("p").path / judge_params.TEMPLATE_FILE).exists()
    judge_params.save_judge_template("p", "Q: {prompt}\nA: {answer}\nGrade 1-10:")
    assert judge_params.judging_template("p").startswith("Q: {prompt}")
    with pytest.raises(judge_params.TemplateError, match=r"lacks \{answer\}"):
        judge_params.save_judge_template("p", "Grade this: {prompt}")
    filled = judge_params.fill("Q: {prompt}\nA: {answer}", "say {answer}", '{"a": 1}')
    assert filled == 'Q: say {answer}\nA: {"a": 1}'


def test_expected_grade_counts_a_grade_that_begins_a_longer_one_once():
    # digits as single tokens: "10" is "1" then "0"
    tokens = {g: [g] for g in range(1, 10)} | {10: [1, 0]}
    logprobs = {g: float("-inf") for g in range(1, 11)}
    logprobs[1] = 0.0  # "1" certain as first token...
    logprobs[10] = -0.6931471805599453  # ...followed by "0" half the time
    assert expected_grade(logprobs, tokens) == pytest.approx((1 * 0.5 + 10 * 0.5) / 1.0)
    logprobs = {g: -2.302585092994046 for g in range(1, 11)}  # 0.1 each; "10" is inside "1"
    assert expected_grade(logprobs, tokens) == pytest.approx((sum(range(2, 11)) * 0.1 + 0.0) / 0.9)


def test_order_by_score_ties_the_lowest_equal_scores_at_the_end():
    assert order_by_score([2.0, 5.0, 3.0]) == ([1, 2, 0], [])
    assert order_by_score([2.0, 5.0, 2.0, 7.0]) == ([3, 1], [0, 2])
    assert order_by_score([4.0, 4.0]) == ([], [0, 1])
