"""What the real evaluation worker writes for another dataset (`eval --dataset`) is what the comparison reads:
its columns appear after the eval split's, named after the dataset, for the base model evaluated on the tiny
model; a project without such results prints the table it printed before."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ANSWER, cli, make_constant_project, write_jsonl

pytestmark = pytest.mark.e2e


def test_the_comparison_shows_the_base_on_another_dataset(home, tiny_model, tmp_path):
    project = make_constant_project("elsewhere", tiny_model, tmp_path)
    cited = [{"prompt": f"Cite item {i}.", "completion": ANSWER} for i in range(5)]
    assert cli("import", project, str(write_jsonl(tmp_path / "cited.jsonl", cited)), "--dataset",
               "cited").returncode == 0
    before = cli("compare", project)
    assert before.returncode == 0 and " on cited" not in before.stdout

    result = cli("eval", project, "--dataset", "cited", "--limit", "2", "--max-new-tokens", "4")
    assert result.returncode == 0, result.stderr
    compared = cli("compare", project).stdout.splitlines()
    header = compared[0]
    assert "exact_match on cited" in header and "seconds on cited" in header
    assert header.index("exact_match on cited") > header.index("eval_loss")
    at = header.index("exact_match on cited")  # the columns are aligned: the cell starts where its name does
    assert compared[1].startswith("base ") and compared[1][at:].split()[0] in ("0%", "50%", "100%")  # 2 records
    assert "records on cited" not in header
