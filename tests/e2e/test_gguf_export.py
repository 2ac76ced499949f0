"""GGUF exports through the CLI: files, Modelfiles, metadata, and clear refusals before any work."""

from __future__ import annotations

import json
import shutil

import pytest

from workbench import locations
from workbench.cli.main import main
from workbench.export import modelfile

CHATML = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def metadata(path):
    from gguf import GGUFReader

    fields = GGUFReader(path).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    return fields["tokenizer.chat_template"].contents(), tokens[fields["tokenizer.ggml.eos_token_id"].contents()]


def test_modelfile_templates_per_family(tmp_path):
    model = tmp_path / "m-q4_k_m.gguf"
    text = modelfile.render(model, CHATML, ["<|im_end|>"])
    assert text.startswith("FROM ./m-q4_k_m.gguf\n") and "{{ .Content }}<|im_end|>" in text
    assert text.count('PARAMETER stop "<|im_end|>"') == 1 and 'PARAMETER stop "<|im_start|>"' in text
    llama3 = modelfile.render(model, "<|start_header_id|>{{ x }}<|eot_id|>", ["<|eot_id|>"])
    assert "<|start_header_id|>{{ .Role }}<|end_header_id|>" in llama3 and 'stop "<|eot_id|>"' in llama3
    other = modelfile.render(model, "[INST] {{ x }} [/INST]", ["</s>"])
    assert "TEMPLATE" not in other and "template embedded in the GGUF" in other and 'stop "</s>"' in other
    lora = modelfile.render(tmp_path / "base.gguf", CHATML, [], adapter=tmp_path / "run-lora-f16.gguf")
    assert lora.startswith("FROM ./base.gguf\nADAPTER ./run-lora-f16.gguf\n")


def test_missing_tools_are_named_with_the_fix(tiny_project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_LLAMA_TOOLS", str(tmp_path / "empty"))
    out = tmp_path / "out"
    assert main(["export-base", tiny_project, "--quant", "Q4_K_M", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "llama.cpp converters not found" in err and "make env" in err
    assert not out.exists()


@pytest.mark.gguf
def test_unknown_quant_and_unsupported_architecture_are_refused(tiny_project, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export-base", tiny_project, "--quant", "Q4_K_M,Q3_FANCY", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Unknown quant type Q3_FANCY" in err and "Q8_0" in err
    assert not out.exists()

    from workbench.export import gguf
    from workbench.export.llama_tools import ToolsError

    strange = tmp_path / "strange"
    strange.mkdir()
    (strange / "config.json").write_text(json.dumps({"architectures": ["FrobnicatorForCausalLM"]}))
    with pytest.raises(ToolsError, match="'FrobnicatorForCausalLM' is not supported"):
        gguf.preflight(strange, out, ["Q4_K_M"], "f16")
    assert not out.exists()


@pytest.mark.gguf
def test_base_model_exports_to_f16_and_q4_k_m(tiny_project, tmp_path, capsys):
    out = tmp_path / "gguf"
    # a random model never ends a chat turn: the chat check is reported, not required
    assert main(["export-base", tiny_project, "--quant", "Q4_K_M", "--out", str(out), "--no-chat-check"]) == 0
    printed = capsys.readouterr().out
    assert printed.strip().splitlines()[-1] == str(out)
    for suffix in ("f16", "q4_k_m"):
        path = out / f"tiny-llama-v1-{suffix}.gguf"
        assert path.stat().st_size > 100_000 and f"wrote {path.name}" in printed
        template, eos = metadata(path)
        assert "<|im_start|>" in template and eos == "<|im_end|>"
        text = (out / f"tiny-llama-v1-{suffix}.Modelfile").read_text()
        assert text.startswith(f"FROM ./{path.name}\n") and 'PARAMETER stop "<|im_end|>"' in text
        assert f"verify {path.name}: " in printed and f"{path.name}: passed" in printed
        assert "(not required)" in (out / f"tiny-llama-v1-{suffix}.gguf.verify.toml").read_text()
    assert (out / "tiny-llama-v1-q4_k_m.gguf").stat().st_size < (out / "tiny-llama-v1-f16.gguf").stat().st_size


@pytest.mark.gguf
@pytest.mark.e2e
def test_a_lora_run_exports_merged_and_adapter_ggufs(lora_run, tiny_model, capsys):
    project, run_id, _ = lora_run
    assert main(["export", project, run_id, "--format", "gguf", "--quant", "Q8_0", "--no-chat-check"]) == 0
    out = locations.exports_dir(project, run_id) / "gguf"
    assert {p.name for p in out.glob("*.gguf")} == {f"{run_id}-f16.gguf", f"{run_id}-q8_0.gguf"}
    assert not out.with_name("gguf.merged-hf").exists()  # the merged folder is temporary
    assert metadata(out / f"{run_id}-q8_0.gguf")[1] == "<|im_end|>"

    capsys.readouterr()
    assert main(["export", project, run_id, "--format", "gguf-lora", "--no-chat-check"]) == 0
    printed = capsys.readouterr().out
    lora_out = locations.exports_dir(project, run_id) / "gguf-lora"
    adapter = lora_out / f"{run_id}-lora-f16.gguf"
    assert adapter.exists() and (lora_out / "base-f16.gguf").exists()  # the tiny base is a folder
    text = (lora_out / f"{run_id}-lora-f16.Modelfile").read_text()
    assert text.startswith(f"FROM ./base-f16.gguf\nADAPTER ./{adapter.name}\n")
    assert f"verify {adapter.name}: " in printed and f"{adapter.name}: passed" in printed


@pytest.mark.gguf
def test_a_failed_verification_fails_the_export_and_keeps_the_files(tiny_project, tmp_path, capsys):
    """With the chat check required, a random model that never ends a turn fails verification."""
    out = tmp_path / "gguf"
    assert main(["export-base", tiny_project, "--quant", "F16", "--out", str(out)]) == 1
    assert "verification failed for tiny-llama-v1-f16.gguf" in capsys.readouterr().err
    assert (out / "tiny-llama-v1-f16.gguf").exists() and (out / "tiny-llama-v1-f16.gguf.verify.toml").exists()


@pytest.mark.gguf
@pytest.mark.slow
def test_the_embedded_smollm2_exports_to_f16_and_q4_k_m(home, tmp_path, capsys):
    from workbench import project as projects

    projects.create("real", base_model="default")
    out = tmp_path / "smol"
    assert main(["export-base", "real", "--quant", "Q4_K_M", "--out", str(out)]) == 0
    files = sorted(p.name for p in out.glob("*.gguf"))
    assert files == ["SmolLM2-135M-Instruct-f16.gguf", "SmolLM2-135M-Instruct-q4_k_m.gguf"]
    template, eos = metadata(out / files[1])
    assert "<|im_start|>" in template and eos == "<|im_end|>"
    for name in files:  # the real model passes its thresholds and ends its chats on its own
        report = (out / f"{name}.verify.toml").read_text()
        assert "passed = true" in report
    shutil.rmtree(out)
