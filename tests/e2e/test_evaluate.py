"""Evaluation as a job on the tiny model: the real worker, its folder and events, stop and reattach,
results beside the run, the table, the comparison and the report; bad input refused before anything."""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.e2e.conftest import ANSWER, HELD_OUT, cli, make_constant_project, wait_for, write_jsonl
from workbench import locations
from workbench.evaluate import job as eval_job
from workbench.evaluate import results
from workbench.evaluate.results import Subject
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run import layout

pytestmark = pytest.mark.e2e


def eval_jobs(project: str) -> list[str]:
    return [info.id for info in eval_job.jobs(project)]


def test_a_run_is_scored_next_to_the_base_and_the_few_shot_baseline(full_run, tmp_path):
    project, run_id = full_run
    before = set(eval_jobs(project))
    result = cli("eval", project, run_id, "--few-shot", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "base", "base+2-shot", run_id]
    assert next(line for line in out.splitlines() if line.startswith("exact match")).split()[-1] == "100%"
    assert "forgetting: change vs base" in out

    (job_id,) = set(eval_jobs(project)) - before  # one job, listed with the runs
    listed = cli("runs", project).stdout
    assert f"{job_id}\teval\tcompleted\tstep 18/18" in listed  # 6 records x (base, few-shot, run)

    report = tomllib.loads((results.results_path(project, Subject(run=run_id))).read_text())
    assert report["eval"]["job"] == job_id and report["eval"]["model"].endswith(f"{run_id}/model")
    assert report["metrics"]["exact_match"] == 1.0 and report["metrics"]["fields"] == {"kind": 1.0, "ok": 1.0}
    assert report["metrics"]["loss"] < 0.5 and report["metrics"]["perplexity"] < 1.7
    assert report["forgetting"]["base_perplexity"] == results.read(project, Subject())["forgetting"]["perplexity"]
    generations = results.read_generations(project, Subject(run=run_id))
    assert [g["answer"] for g in generations] == [ANSWER] * 6
    assert generations[0]["scores"]["exact_match"] is True
    shots = results.read(project, Subject(shots=2))
    assert len(shots["eval"]["examples"]) == 2 and "forgetting" not in shots  # same weights as the base

    again = cli("eval", project, run_id, "--few-shot", "2")  # nothing changed: the results are read, not retaken
    assert again.returncode == 0 and again.stdout.startswith("Every result is up to date")
    assert set(eval_jobs(project)) - before == {job_id}

    compared = cli("compare", project, "--sort", "exact_match").stdout.splitlines()
    assert compared[0].split()[:4] == ["run", "method", "state", "steps"]
    assert compared[1].split()[0] == run_id  # the best exact match first
    assert job_id not in "\n".join(compared)  # evaluation jobs train nothing: not compared
    markdown = cli("compare", project, "--sort", "exact_match", "--markdown").stdout.splitlines()
    assert markdown[0] == f"# Runs of {project}"
    assert markdown[2].startswith(f"{len(compared) - 1} rows, by exact_match, ")
    assert markdown[4].startswith("| run | method | state | steps |") and markdown[5].startswith("| --- |")
    assert [line.split(" | ")[0][2:] for line in markdown[6:]] == [line.split()[0] for line in compared[1:]]
    written_to = tmp_path / "runs.md"
    assert cli("compare", project, "--out", str(written_to)).stdout.strip() == str(written_to)
    assert written_to.read_text().splitlines()[4:] == cli("compare", project, "--markdown").stdout.splitlines()[4:]

    template = tmp_path / "judge.txt"
    template.write_text("Grade this: {prompt}")
    refused = cli("eval", project, run_id, "--judge", "base", "--judge-template", str(template))
    assert refused.returncode == 1 and "lacks {answer}" in refused.stderr
    assert set(eval_jobs(project)) - before == {job_id}  # refused before a job was made
    judged = cli("eval", project, run_id, "--judge", "base")  # the base model grades the run's answers and its own
    assert judged.returncode == 0, judged.stderr
    assert "judge: wins vs base" in judged.stdout
    grades = [g["scores"]["judge"] for g in results.read_generations(project, Subject(run=run_id))]
    points = [1.0 if g["run"] > g["base"] else 0.5 if g["run"] == g["base"] else 0.0 for g in grades]
    assert len(points) == 6
    assert results.read(project, Subject(run=run_id))["metrics"]["judge_win_rate"] == round(sum(points) / 6, 4)

    written = cli("report", project, run_id)
    assert written.returncode == 0, written.stderr
    text = (Subject(run=run_id).folder(project) / layout.EVAL_REPORT).read_text()
    assert f"| metric | base | base+2-shot | {run_id} |" in text
    assert "## Curves" in text and "- loss: `" in text
    assert "| base | tuned |" in text and ANSWER in text


def test_stop_reattach_and_take_up_again(home, tiny_model, tmp_path):
    project = make_constant_project("slow", tiny_model, tmp_path)
    many = [{"messages": [{"role": "user", "content": f"Catalogue item {i}."},
                          {"role": "assistant", "content": ANSWER}]} for i in range(200, 400)]
    assert cli("import", project, str(write_jsonl(tmp_path / "more.jsonl", many)), "--split", "eval").returncode == 0
    folder = eval_job.start(project, max_new_tokens=48, batch_size=1, wait_for_start=True)
    assert eval_job.start(project) == folder  # the same evaluation asked again: reattached, not doubled
    assert eval_job.running(project) == folder

    events = eval_job.follow(folder)
    assert isinstance(next(events), ev.Started)  # a follower reads from the first event
    wait_for(lambda: store.read(folder).step >= 2, timeout=60, what="answers")
    store.stop_job(folder)
    rest = list(events)
    assert isinstance(rest[-1], ev.Finished) and rest[-1].reason == "stopped"
    assert not results.results_path(project, Subject()).exists()  # the interrupted subject wrote nothing
    assert not results.generations_path(project, Subject()).exists()
    assert store.read(folder).state == "stopped"

    result = cli("eval", project, "--limit", "6")  # taken up again (a shorter set, to stay short)
    assert result.returncode == 0, result.stderr
    assert results.read(project, Subject())["metrics"]["records"] == 6


def test_bad_input_is_one_line_and_writes_nothing(home, tiny_model, tmp_path):
    project = make_constant_project("bad", tiny_model, tmp_path)
    runs = locations.runs_dir(project)

    def refused(*args: str) -> str:
        result = cli("eval", project, *args)
        assert result.returncode == 1 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not runs.exists() or not any(runs.iterdir())
        assert not layout.evaluations(locations.project_dir(project)).exists()
        return result.stderr

    assert "has no run 'no-such-run'" in refused("no-such-run")
    assert "Unknown metric(s): bleu" in refused("--metric", "bleu")
    assert "reads the dataset column 'tests'" in refused("--metric", "code")
    assert "needs 50 train records" in refused("--few-shot", "50")
    assert "Reward model 'nowhere'" in refused("--reward-model", "nowhere")
    assert "has no dataset 'nope'" in refused("--dataset", "nope")

    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"Catalogue item {i}."} for i in range(3)])
    assert cli("import", project, str(prompts), "--split", "eval", "--replace", "--dataset", "held-out").returncode == 0
    assert "'exact_match' compares answers with reference answers, and 3 of 3" in refused("--metric", "exact_match")
    assert "No metric fits" in refused()


def test_another_dataset_is_evaluated_apart_from_the_eval_split(home, tiny_model, tmp_path):
    project = make_constant_project("other", tiny_model, tmp_path)
    cited = [{"prompt": f"Cite item {i}.", "completion": ANSWER} for i in range(5)]
    assert cli("import", project, str(write_jsonl(tmp_path / "cited.jsonl", cited)), "--dataset",
               "cited").returncode == 0
    result = cli("eval", project, "--dataset", "cited", "--limit", "3", "--max-new-tokens", "8")
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "base", "on", "cited"]
    on = Subject(on="cited")
    assert on.folder(project).name == "base-on-cited"
    found = results.read(project, on)
    assert found["metrics"]["records"] == 3 and found["eval"]["datasets"] == ["cited"]
    assert [f"Cite item {i}." in g["prompt"] for i, g in enumerate(results.read_generations(project, on))] == [
        True] * 3
    assert not results.results_path(project, Subject()).exists()  # the eval split's results are apart


def test_a_regex_metric_and_a_reward_model_on_answers_without_references(home, tiny_model, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    project = make_constant_project("scored", tiny_model, tmp_path)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"Catalogue item {i}."} for i in range(4)])
    assert cli("import", project, str(prompts), "--split", "eval", "--replace", "--dataset", "held-out").returncode == 0
    scorer = tmp_path / "scorer"
    config = AutoConfig.from_pretrained(tiny_model, num_labels=1)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(scorer)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(scorer)

    result = cli("eval", project, "--metric", "regex", "--set", "regex=.", "--reward-model", str(scorer),
                 "--max-new-tokens", "8")
    assert result.returncode == 0, result.stderr
    found = results.read(project, Subject())
    assert "loss" not in found["metrics"] and "exact_match" not in found["metrics"]  # no references
    assert set(found["metrics"]["rewards"]) == {"regex"} and isinstance(found["metrics"]["reward_model"], float)
    lines = results.read_generations(project, Subject())
    assert len(lines) == 4 and all(isinstance(g["scores"]["reward_model"], float) for g in lines)
    assert found["metrics"]["rewards"]["regex"] == round(sum(bool(g["answer"]) for g in lines) / 4, 4)
    assert found["metrics"]["cut"] == round(sum(g.get("cut") == 8 for g in lines) / 4, 4)  # the share marked


def test_likelihood_and_left_padding_match_their_definitions(tiny_model):
    import torch

    from workbench import models
    from workbench.evaluate import generation as gen

    torch.manual_seed(0)
    model, tokenizer = models.load_causal_lm(tiny_model).eval(), models.load_tokenizer(tiny_model)
    prompts = [[{"role": "user", "content": "Hi"}],
               [{"role": "user", "content": "A much longer question, with words."}]]
    answers = ["Hello there.", "Yes."]
    expected_nll, expected_n = 0.0, 0
    for prompt, answer in zip(prompts, answers):  # one at a time, no padding: the definition
        ids, start = gen.answer_tokens(tokenizer, prompt, answer)
        assert tokenizer.decode(ids[start:]).startswith(answer)
        with torch.inference_mode():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        expected_nll -= sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids)))
        expected_n += len(ids) - start
    nll, n = gen.answer_nll(model, tokenizer, prompts, answers, batch_size=2)
    assert n == expected_n and nll == pytest.approx(expected_nll, rel=1e-4)

    held = [[{"role": "user", "content": json.dumps(r["messages"][0]["content"]) * (i + 1)}]
            for i, r in enumerate(HELD_OUT[:3])]
    assert gen.generate(model, tokenizer, held, 12, batch_size=3) == gen.generate(model, tokenizer, held, 12, 1)
    # an answer is cut when the limit ended it: 12 tokens without EOS (one at a time, no padding: the definition)
    _, cut = gen.generate_marked(model, tokenizer, held, 12, batch_size=3)
    for prompt, was_cut in zip(held, cut):
        ids = tokenizer(gen.render(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            out = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        new = out[0, len(ids):].tolist()
        assert was_cut == (len(new) == 12 and tokenizer.eos_token_id not in new)
