"""The reward library, reward specs, weights, and a person's reward file, on hand-made completions."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from workbench.rewards import RewardError, combine, load_rewards, parse_spec, reward_options
from workbench.rewards.library import (
    code_reward,
    exact_answer,
    format_reward,
    json_reward,
    length_reward,
    length_score,
    numeric_answer,
    regex_reward,
    xml_reward,
)
from workbench.rewards.scoring import Judged, Recorder, failure_counts, judge


def chat(text: str) -> list[dict]:
    """A conversational completion, as TRL hands it to rewards."""
    return [{"role": "assistant", "content": text}]


# --- format -------------------------------------------------------------------------------------


def test_format_wants_reasoning_in_think_tags_then_an_answer():
    completions = ["<think>2 and 2</think> 4", "4", "<think>2 and 2</think>", "  <think>a\nb</think>\nThe answer: 4\n",
                   chat("<think>x</think> yes"), "<think></think> 4"]
    assert format_reward(completions) == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]


def test_format_takes_a_pattern_for_the_whole_completion():
    assert format_reward(["Answer: 5", "So, Answer: 5"], format_pattern=r"Answer: \d+") == [1.0, 0.0]
    with pytest.raises(RewardError, match="format_pattern"):
        format_reward(["x"], format_pattern="(")


# --- exact and numeric --------------------------------------------------------------------------


def test_exact_ignores_case_and_whitespace_and_reads_the_answer_part():
    completions = ["  Paris ", "<think>hmm</think>\n  PARIS", "<answer>new   york</answer> done", "Lyon",
                   chat("paris")]
    answers = ["Paris", "paris", "New York", "Paris", "Paris"]
    assert exact_answer(completions, answer=answers) == [1.0, 1.0, 1.0, 0.0, 1.0]


def test_exact_reads_another_column_and_names_a_missing_one():
    assert exact_answer(["b"], answer_column="label", label=["B"]) == [1.0]
    with pytest.raises(RewardError, match="'answer'.*their columns: tests"):
        exact_answer(["b"], tests=["assert 1"], trainer_state=None)


def test_numeric_compares_the_last_number_with_tolerance():
    completions = ["3 apples and 4 pears make 7", "about 1,234.5", "-2", "none", "<think>12</think> 13",
                   "7.0000001"]
    expected = ["7", "#### 1234.5", -2, "5", "13", "7"]
    assert numeric_answer(completions, answer=expected) == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert numeric_answer(["7.01"], answer=["7"]) == [0.0]
    assert numeric_answer(["7.01"], answer=["7"], numeric_tolerance=0.05) == [1.0]


def test_numeric_cannot_judge_an_answer_without_a_number():
    assert numeric_answer(["7", chat("8")], answer=["unknown", "8"]) == [None, 1.0]


# --- regex, json, xml ---------------------------------------------------------------------------


def test_regex_searches_the_completion():
    assert regex_reward(["Final: 12", "no", chat("x\nFinal: 3")], regex=r"^Final: \d+$") == [1.0, 0.0, 0.0]
    assert regex_reward(["x\nFinal: 3"], regex=r"(?m)^Final: \d+$") == [1.0]
    with pytest.raises(RewardError, match="needs a pattern"):
        regex_reward(["x"])
    with pytest.raises(RewardError, match="not a valid regex"):
        regex_reward(["x"], regex="[")


def test_json_scores_validity_then_the_share_of_required_fields():
    completions = ['{"title": "Dune", "author": "Herbert", "year": 1965}',
                   'Here it is:\n```json\n{"title": "Dune"}\n```',
                   'The record is {"title": "Dune", "year": 1965} as asked.',
                   "{title: Dune}", "[1, 2]", chat('{"author": "Herbert"}')]
    assert json_reward(completions, json_fields="title, author, year") == [1.0, 1 / 3, 2 / 3, 0.0, 0.0, 1 / 3]
    assert json_reward(["[1, 2]", "nope"]) == [1.0, 0.0]


def test_xml_scores_well_formedness_then_required_elements():
    completions = ["<think>a</think><answer>b</answer>", "text <answer>b</answer> more", "<answer>b</think>",
                   "<a><b>1 & 2</b></a>", chat("<think>a</think>")]
    assert xml_reward(completions, xml_elements="think,answer") == [1.0, 0.5, 0.0, 0.0, 0.5]
    assert xml_reward(["plain text", "<x/>", "<x>"]) == [1.0, 1.0, 0.0]


# --- length -------------------------------------------------------------------------------------


def test_length_is_one_inside_the_bounds_and_falls_off_outside():
    assert [length_score(n, 10, 20) for n in (0, 5, 10, 15, 20, 25, 30, 40, 50)] == \
           [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.0, 0.0]
    assert length_score(10_000, 0, 0) == 1.0  # no upper bound
    completions = ["x" * 5, "x" * 15, "x" * 30, chat("x" * 12)]
    assert length_reward(completions, length_min=10, length_max=20) == [0.5, 1.0, 0.5, 1.0]


def test_length_counts_tokens_from_completion_ids_or_a_tokenizer():
    ids = [[1] * 3, [1] * 6, [1] * 12]
    assert length_reward(["a", "b", "c"], length_min=4, length_max=8, length_unit="tokens",
                         completion_ids=ids) == [0.75, 1.0, 0.5]

    def words(text, add_special_tokens=False):
        return {"input_ids": text.split()}

    assert length_reward(["a b", "a b c d"], length_min=4, length_max=8, length_unit="tokens",
                         tokenizer=words) == [0.5, 1.0]
    with pytest.raises(RewardError, match="tokenizer"):
        length_reward(["a"], length_unit="tokens")
    with pytest.raises(RewardError, match="above length_max"):
        length_reward(["a"], length_min=9, length_max=3)


# --- code ---------------------------------------------------------------------------------------


def test_code_runs_the_code_block_against_the_tests_column():
    good = "Here:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    bad = "```python\ndef add(a, b):\n    return a - b\n```"
    plain = "def add(a, b):\n    return a + b"
    tests = "assert add(1, 2) == 3\nassert add(-1, 1) == 0"
    assert code_reward([good, bad, plain, chat(good)], tests=[tests] * 4) == [1.0, 0.0, 1.0, 1.0]
    split = ["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert add(0, 0) == 0", "assert add(1, 1) == 2"]
    assert code_reward([good, "```python\nraise SystemExit(0)\n```"], tests=[split, split]) == [0.75, 0.0]
    assert code_reward([good], unit_tests=[tests], tests_column="unit_tests") == [1.0]


# --- specs, weights, combine --------------------------------------------------------------------


def test_spec_parses_names_and_weights_in_order():
    assert parse_spec("format:1, numeric:2.5,length") == {"format": 1.0, "numeric": 2.5, "length": 1.0}
    assert parse_spec("exact:-1") == {"exact": -1.0}
    for bad, words in [("", "No reward"), ("format:x", "not a number"), ("format,format:2", "named twice"),
                       ("9lives", "not a reward name"), ("format:inf", "finite")]:
        with pytest.raises(RewardError, match=words):
            parse_spec(bad)


def test_combine_weighs_each_reward_and_counts_none_as_zero():
    rewards = load_rewards("format:1,numeric:2,length:0.5", options={"length_max": 20})
    completions = ["<think>so</think> 42", "41", chat("<think>x</think> the answer is " + "4" * 30)]
    total, per_reward = combine(rewards, ["p"] * 3, completions, answer=["42", "no number", "7"])
    assert per_reward == {"format": [1.0, 0.0, 1.0], "numeric": [1.0, 0.0, 0.0], "length": [1.0, 1.0, 0.0]}
    # the third completion has 59 characters: above 2 x 20, so length scores 0
    assert total == [1 + 2 + 0.5, 0.5, 1.0]


def test_rewards_carry_their_names_for_trl_metrics_and_their_options():
    rewards = load_rewards("regex:3", options={"regex": r"\d"})
    assert [(r.name, r.__name__, r.weight) for r in rewards] == [("regex", "regex", 3.0)]
    assert rewards[0](prompts=["p", "p"], completions=["a1", "b"], trainer_state=None) == [1.0, 0.0]


def test_unknown_rewards_and_options_are_named_with_what_exists():
    with pytest.raises(RewardError, match=r"Unknown reward\(s\): nope\. The library has: format, exact"):
        load_rewards("format,nope")
    with pytest.raises(RewardError, match="Unknown reward option.*tolerance"):
        reward_options({"tolerance": 1})


def test_options_come_from_a_params_object():
    @dataclass
    class Params:
        answer_column: str = "label"
        learning_rate: float = 1e-5

    options = reward_options(Params())
    assert options["answer_column"] == "label" and options["json_fields"] == "" and "learning_rate" not in options


def test_rewards_package_is_light_at_import():
    code = "import sys, workbench.rewards; print(any(m in sys.modules for m in ('torch', 'transformers', 'trl')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- a person's reward file ---------------------------------------------------------------------

USER_FILE = '''
import math
from os.path import join  # imported, not defined here: not a reward

def short(prompts, completions, **kwargs):
    return [1.0 if len(c) < 5 else 0.0 for c in completions]

def picky(prompts, completions, answer, **kwargs):
    scores = []
    for c, a in zip(completions, answer):
        if c == "boom":
            raise ValueError("cannot read " + c)
        scores.append(1.0 if c == a else 0.0)
    return scores

def wrong_count(prompts, completions, **kwargs):
    return [1.0]

def _helper():
    return 1
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(USER_FILE)
    return str(path)


def test_user_functions_are_rewards_by_name(user_file):
    rewards = load_rewards("short:2,format", user_file)
    assert [(r.name, r.weight, r.user_defined) for r in rewards] == [("short", 2.0, True), ("format", 1.0, False)]
    total, _ = combine(rewards, ["p", "p"], ["ok", "<think>a</think> long answer"])
    assert total == [2.0, 1.0]


def test_a_raising_user_function_scores_none_on_its_records_warns_once_and_counts(user_file):
    warnings = []
    picky = load_rewards("picky", user_file, warn=warnings.append)[0]
    scores = picky(["p"] * 3, ["a", "boom", "c"], answer=["a", "b", "x"], record_index=[7, 8, 9])
    assert scores == [1.0, None, 0.0]
    assert warnings == [("reward 'picky' raised ValueError: cannot read boom on record 8 (1 of 3 completions of the "
                         "batch); those score 0, and later failures are counted, not shown.")]
    total, _ = combine([picky], ["p"] * 2, ["boom", "boom"], answer=["a", "b"])
    assert total == [0.0, 0.0]
    assert len(warnings) == 1  # shown once; the later batch is counted
    assert (picky.failures.failed, picky.failures.judged) == (3, 5)
    assert picky.failures.summary() == ("reward 'picky' raised ValueError: cannot read boom on record 8; it failed "
                                        "on 3 of 5 completions, which score 0.")
    assert failure_counts([picky]) == {"reward_errors/picky": 3.0}


def test_judge_gives_weighted_scores_totals_and_each_completion_s_errors(user_file):
    rewards = load_rewards("picky:2,short:0.5", user_file, warn=lambda m: None)
    judgement = judge(rewards, ["p"] * 3, ["a", "boom", "long answer"], answer=["a", "b", "x"])
    assert [judgement.judged(i) for i in range(3)] == [
        Judged({"picky": 2.0, "short": 0.5}, 2.5, {}),
        Judged({"short": 0.5}, 0.5, {"picky": "ValueError: cannot read boom"}),
        Judged({"picky": 0.0, "short": 0.0}, 0.0, {}),
    ]
    assert judge(rewards[:1], ["p"], ["boom"], answer=["b"]).judged(0) == \
        Judged({}, None, {"picky": "ValueError: cannot read boom"})  # no reward scored it: no total


def test_the_recorder_sees_what_the_trainer_hands_each_reward(user_file):
    rewards = load_rewards("picky:2,short:0.5", user_file, warn=lambda m: None)
    recorder = Recorder(rewards)
    assert [(w.__name__, w.weight) for w in recorder.wrapped] == [("picky", 2.0), ("short", 0.5)]
    for batch in (["a", "boom"], ["boom", "xy"]):
        said = [w(["p", "q"], batch, answer=["a", "xy"], log_metric=print) for w in recorder.wrapped]
        assert said[0] == rewards[0](["p", "q"], batch, answer=["a", "xy"])
    last = recorder.last
    assert last.number == 2 and last.completions == ["boom", "xy"] and last.columns == {"answer": ["a", "xy"]}
    assert [last.judged(i) for i in range(2)] == [
        Judged({"short": 0.5}, 0.5, {"picky": "ValueError: cannot read boom"}), Judged({"picky": 2.0, "short": 0.5}, 2.5, {})]


def test_a_user_function_returning_the_wrong_count_is_an_error(user_file):
    reward = load_rewards("wrong_count", user_file)[0]
    with pytest.raises(RewardError, match="'wrong_count' returned 1 scores for 2 completions"):
        reward(["p", "p"], ["a", "b"])


def test_missing_user_functions_are_listed_with_what_the_file_defines(user_file):
    with pytest.raises(RewardError) as caught:
        load_rewards("short,helper,joinx", user_file)
    message = str(caught.value)
    assert "Unknown reward(s): helper, joinx." in message
    assert "defines: short, picky, wrong_count." in message


def test_reward_file_errors_say_where(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(prompts, completions, **kw):\n    return [\n")
    with pytest.raises(RewardError, match="syntax error on line 2"):
        load_rewards("f", str(broken))
    failing = tmp_path / "failing.py"
    failing.write_text("x = 1\nraise RuntimeError('no data')\n")
    with pytest.raises(RewardError, match=r"failed on import \(line 2\): RuntimeError: no data"):
        load_rewards("f", str(failing))
    with pytest.raises(RewardError, match="does not exist"):
        load_rewards("f", str(tmp_path / "absent.py"))


# --- the rows GRPO and RLOO train on ------------------------------------------------------------


def test_prompt_rows_keep_the_columns_rewards_read():
    from workbench.data.prompts import prompt_rows

    records = [{"prompt": "2+2?", "answer": "4", "tests": ["assert True"]},
               {"prompt": "Name a colour.", "completion": "red"},
               {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                             {"role": "assistant", "content": "Hello"}]}]
    rows = prompt_rows(records, chat=False)
    assert [r["record_index"] for r in rows] == [1, 2, 3]
    assert [r["answer"] for r in rows] == ["4", "red", "Hello"]
    assert rows[1]["tests"] is None  # every row has every column, as a dataset needs
    # one chat record makes every prompt a conversation
    assert rows[0]["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert rows[2]["prompt"] == records[2]["messages"][:-1]


def test_text_prompts_become_a_user_turn_only_with_a_chat_template():
    from workbench.data.prompts import prompt_rows

    assert prompt_rows([{"prompt": "Hi"}], chat=False)[0]["prompt"] == "Hi"
    assert prompt_rows([{"prompt": "Hi"}], chat=True)[0]["prompt"] == [{"role": "user", "content": "Hi"}]


def test_other_record_kinds_are_refused_by_name():
    from workbench.data.errors import DataError
    from workbench.data.prompts import prompt_rows

    with pytest.raises(DataError, match="fields chosen, prompt, rejected"):
        prompt_rows([{"prompt": "p", "chosen": "a", "rejected": "b"}], chat=False)


def test_a_step_must_hold_whole_groups():
    from workbench.rewards.setup import check_group
    from workbench.methods.grpo_params import GRPOParams
    from workbench.params import ParamError, build

    check_group(build(GRPOParams, {"batch_size": 8, "num_generations": 4}))
    check_group(build(GRPOParams, {"batch_size": 2, "grad_accum": 2, "num_generations": 4}))
    with pytest.raises(ParamError, match=r"6 x 1 = 6\) must be a multiple of num_generations \(4\)"):
        check_group(build(GRPOParams, {"batch_size": 6, "num_generations": 4}))


def test_grpo_and_rloo_are_registered_with_reward_options_on_their_forms():
    from workbench.params import describe
    from workbench.registry import METHODS
    from workbench.rewards.library import OPTIONS

    for name, default in (("grpo", "format"), ("rloo", "")):
        infos = {i.name: i for i in describe(METHODS[name].params)}
        assert infos["rewards"].default == default and infos["rewards"].group == "rewards"
        assert all(infos[o].group == "rewards" and infos[o].help for o in OPTIONS)
        assert infos["length_unit"].choices == ("chars", "tokens")
    assert METHODS["grpo"].data_kinds == ("prompt", "prompt_completion", "chat")


def test_grpo_loss_types_are_the_ones_trl_implements():
    import inspect

    from trl.trainer import grpo_trainer

    from workbench.methods.grpo_params import GRPO_LOSS_TYPES

    source = inspect.getsource(grpo_trainer.GRPOTrainer._compute_loss)
    for loss in GRPO_LOSS_TYPES:
        assert f'"{loss}"' in source, loss
