"""KTO, ORPO and the embedding method end to end on the tiny model: each moves its own measure the right way."""

from __future__ import annotations

import math

import pytest

from screens.run_charts import charts_for
from screens.run_metrics import RunMetrics
from tests.e2e.conftest import cli, events, of_type, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.run import events as ev

pytestmark = pytest.mark.e2e

PAIRS = [{"prompt": f"What is {i} plus one?", "chosen": f"{i} plus one is {i + 1}.", "rejected": "I do not know."}
         for i in range(30)]
LABELLED = [row for i in range(30) for row in (
    {"prompt": f"What is {i} plus one?", "completion": f"{i} plus one is {i + 1}.", "label": True},
    {"prompt": f"What is {i} plus two?", "completion": "I do not know.", "label": "bad"})]
FAST = ["--wait", "--set", "batch_size=4", "--set", "max_length=64", "--set", "warmup=0", "--set", "save_steps=100"]

# A retrieval toy: every note shares a long boilerplate and differs in one word, so a random model's mean
# pooling finds the boilerplate alike in all; training teaches it to weigh the word, held-out words too.
WORDS = ("apple banana cherry grape lemon mango olive peach pear plum tiger zebra horse camel eagle otter whale "
         "shark raven robin maple cedar birch aspen river ocean desert canyon valley meadow glacier copper silver "
         "nickel cobalt iron zinc violin guitar piano flute drum trumpet harp cello rocket saturn jupiter venus "
         "comet nebula quasar pixel kernel socket buffer cursor").split()
NOTE = "This is a short catalogue note, filed with the others on the shelf, and its subject is {}."


def note_pair(i: int) -> dict:
    return {"anchor": f"Which note is about {WORDS[i]}?", "positive": NOTE.format(WORDS[i]),
            "negative": NOTE.format(WORDS[(i + 7) % len(WORDS)])}


def run_of(project: str, method: str, *extra: str) -> tuple[str, list[ev.Event]]:
    result = cli("train", project, "--method", method, *FAST, *extra)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    got = events(project, run_id)
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    return run_id, got


def series(got: list[ev.Event], key: str, kind: type = ev.Log) -> list[float]:
    return [e.metrics[key] for e in of_type(got, kind) if key in e.metrics]


def chart_names(method: str, got: list[ev.Event]) -> list[str]:
    metrics = RunMetrics()
    metrics.add(got)
    return [chart.name for chart in charts_for(method, metrics)]


@pytest.fixture
def feedback_project(home, tiny_model, tmp_path) -> str:
    projects.create("feedback", base_model=str(tiny_model))
    import_file("feedback", write_jsonl(tmp_path / "labels.jsonl", LABELLED))
    import_file("feedback", write_jsonl(tmp_path / "prefs.jsonl", PAIRS))
    return "feedback"


def test_kto_raises_the_good_answers_over_the_bad_ones(feedback_project):
    run_id, got = run_of(feedback_project, "kto", "--dataset", "labels", "--set", "mode=full",
                         "--set", "learning_rate=1e-3", "--set", "max_steps=8", "--set", "eval_steps=4")
    begin = of_type(got, ev.TrainBegin)[0]
    assert (begin.train_records, begin.eval_records) == (54, 6)
    margins = series(got, "rewards/margins")
    assert margins[0] == pytest.approx(0.0, abs=1e-6)  # the policy starts as its reference
    assert margins[-1] > 0.1 and series(got, "rewards/chosen")[-1] > 0 > series(got, "rewards/rejected")[-1]
    assert series(got, "rewards/margins", ev.Eval)[-1] > 0.1  # held-out answers too
    assert all(math.isfinite(k) for k in series(got, "kl"))
    assert chart_names("kto", got) == ["loss", "good vs bad", "margin", "KL", "learning rate", "grad norm"]
    assert (locations.run_dir(feedback_project, run_id) / "model" / "config.json").exists()


def test_kto_splits_preference_pairs_into_good_and_bad_answers_and_saves_an_adapter(feedback_project):
    run_id, got = run_of(feedback_project, "kto", "--dataset", "prefs", "--set", "max_steps=2",
                         "--set", "eval_steps=0", "--set", "desirable_weight=0")
    assert of_type(got, ev.TrainBegin)[0].train_records == 54  # 27 pairs, a good and a bad answer each
    assert (locations.run_dir(feedback_project, run_id) / "adapter" / "adapter_config.json").exists()


def test_orpo_learns_the_chosen_answers_and_their_odds_over_the_rejected(feedback_project):
    run_id, got = run_of(feedback_project, "orpo", "--dataset", "prefs", "--set", "mode=full",
                         "--set", "learning_rate=1e-3", "--set", "max_steps=8", "--set", "eval_steps=4")
    nll, odds = series(got, "nll_loss"), series(got, "log_odds_chosen")
    assert nll[-1] < nll[0] and odds[-1] > odds[0] + 0.1
    assert series(got, "rewards/margins")[-1] > series(got, "rewards/margins")[0]
    assert series(got, "rewards/accuracies", ev.Eval)[-1] == 1.0
    assert chart_names("orpo", got) == ["loss", "reward accuracy", "log odds ratio", "chosen NLL", "margin",
                                        "learning rate", "grad norm"]
    assert (locations.run_dir(feedback_project, run_id) / "model" / "config.json").exists()


def test_an_embedding_model_retrieves_held_out_notes_better_and_saves_a_sentence_transformers_folder(
        home, tiny_model, tmp_path):
    projects.create("notes", base_model=str(tiny_model))
    import_file("notes", write_jsonl(tmp_path / "train.jsonl", [note_pair(i) for i in range(45)]))
    import_file("notes", write_jsonl(tmp_path / "held.jsonl", [note_pair(i) for i in range(45, len(WORDS))]),
                split="eval")
    run_id, got = run_of("notes", "embed", "--set", "batch_size=8", "--set", "learning_rate=1e-3",
                         "--set", "max_steps=12", "--set", "eval_steps=0")
    before, after = of_type(got, ev.Eval)[0], of_type(got, ev.Eval)[-1]
    assert (before.step, after.step) == (0, 12)
    assert after.metrics["recall@1"] >= before.metrics["recall@1"] + 0.15 and after.metrics["recall@1"] >= 0.8
    assert after.metrics["mrr@10"] > before.metrics["mrr@10"]
    assert after.loss < before.loss
    summary = [s.message for s in of_type(got, ev.Status) if s.message.startswith("Held-out pairs")]
    assert summary == [f"Held-out pairs: recall@1 {before.metrics['recall@1']:.3f} -> "
                       f"{after.metrics['recall@1']:.3f}, " + summary[0].split(", ", 1)[1]]
    assert chart_names("embed", got) == ["retrieval", "loss", "learning rate", "grad norm"]

    from sentence_transformers import SentenceTransformer

    folder = locations.run_dir("notes", run_id) / "model"
    model = SentenceTransformer(str(folder), device="cpu")
    vectors = model.encode(["Which note is about comet?", NOTE.format("comet"), NOTE.format("pixel")],
                           normalize_embeddings=True)
    assert vectors.shape == (3, 32)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # the saved model is the trained one


def test_an_embedding_model_on_scored_pairs_trains_with_cosent(home, tiny_model, tmp_path):
    def rows(words: range) -> list[dict]:
        return [{"sentence1": f"Which note is about {WORDS[i]}?", "sentence2": NOTE.format(WORDS[j]),
                 "score": 5.0 if i == j else 0.0} for i in words for j in (i, (i + 3) % len(WORDS))]

    projects.create("sts", base_model=str(tiny_model))
    import_file("sts", write_jsonl(tmp_path / "sts.jsonl", rows(range(40))))
    import_file("sts", write_jsonl(tmp_path / "held.jsonl", rows(range(40, len(WORDS)))), split="eval")
    _, got = run_of("sts", "embed", "--set", "batch_size=8", "--set", "learning_rate=3e-4",
                    "--set", "max_steps=40", "--set", "eval_steps=0")
    before, after = of_type(got, ev.Eval)[0], of_type(got, ev.Eval)[-1]
    assert after.metrics["spearman"] > before.metrics["spearman"] + 0.03 and after.loss < 0.8 * before.loss
    assert chart_names("embed", got) == ["spearman", "loss", "learning rate", "grad norm"]
