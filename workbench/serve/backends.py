"""The two ways the server runs a model: transformers (a base, a run, a checkpoint) and llama.cpp (a GGUF file).

Each answers a conversation through the model's own chat template, calling `on_text` with the text
of each new token as it comes, and returns why it ended (stop | length | stopped) and how many tokens
it wrote. `stop` (a threading.Event) ends an answer between two tokens. Temperature 0 is greedy; both
sample from the same filters otherwise (temperature, then top-p; no top-k, no min-p). Heavy imports
happen inside the functions that need them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from workbench import models
from workbench.serve.params import ChatParams, with_system
from workbench.serve.protocol import ServeError

OnText = Callable[[str], None]
Status = Callable[[str], None]


class Transformers:
    """A Hugging Face model, its answer streamed by a TextIteratorStreamer while generate runs in a thread."""

    kind = "transformers"

    def __init__(self, base: str, threads: int, status: Status):
        import torch

        torch.set_num_threads(threads)
        folder = models.resolve(base, status=lambda message, progress=None: status(message))
        status(f"Loading {models.describe(base)} with transformers")
        self.tokenizer = models.load_tokenizer(folder)
        if not self.tokenizer.chat_template:
            raise ServeError(f"{models.describe(base)} has no chat template: the playground cannot lay out a "
                             "conversation for it.")
        self.model = models.load_causal_lm(folder).eval()

    def generate(self, messages: list[dict], p: ChatParams, stop: threading.Event, on_text: OnText) -> tuple[str, int]:
        import torch
        from transformers import (
            StoppingCriteria,
            StoppingCriteriaList,
            TextIteratorStreamer,
        )

        class StopAsked(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

        inputs = self.tokenizer.apply_chat_template(with_system(messages, p.system), add_generation_prompt=True,
                                                    return_tensors="pt", return_dict=True)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sampling = ({"do_sample": True, "temperature": p.temperature, "top_p": p.top_p, "top_k": 0}
                    if p.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
        done: dict = {}

        def run() -> None:
            try:
                torch.manual_seed(p.seed)
                with torch.inference_mode():
                    done["out"] = self.model.generate(
                        **inputs, **sampling, max_new_tokens=p.max_new_tokens, streamer=streamer,
                        pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id,
                        stopping_criteria=StoppingCriteriaList([StopAsked()]))
            except BaseException as exc:  # noqa: BLE001 - raised again in the serving thread
                done["error"] = exc
                streamer.end()

        thread = threading.Thread(target=run, name="generate", daemon=True)
        thread.start()
        for text in streamer:
            if text:
                on_text(text)
        thread.join()
        if "error" in done:
            raise done["error"]
        tokens = int(done["out"].shape[1] - inputs["input_ids"].shape[1])
        reason = "stopped" if stop.is_set() else "length" if tokens >= p.max_new_tokens else "stop"
        return reason, tokens


class LlamaCpp:
    """A GGUF file in llama.cpp, laid out by the chat template embedded in the file."""

    kind = "llama.cpp"

    def __init__(self, path: Path, threads: int, status: Status):
        try:
            from llama_cpp import Llama
        except Exception as exc:  # noqa: BLE001 - a missing or broken build reads the same to a person
            raise ServeError(f"llama-cpp-python is not installed/built ({exc}): run `make env`.") from None

        status(f"Loading {Path(path).name} with llama.cpp")
        try:
            self.llm = Llama(model_path=str(path), n_ctx=0, n_threads=threads, n_threads_batch=threads,
                                    verbose=False)
        except Exception as exc:  # noqa: BLE001 - llama.cpp says little more than "failed to load"
            raise ServeError(f"llama.cpp cannot load {Path(path).name}: {exc}") from None
        if not self.llm.metadata.get("tokenizer.chat_template"):
            raise ServeError(f"{Path(path).name} has no chat template embedded: llama.cpp would not know how to "
                             "lay out a conversation. Export it again with a model that has one.")

    def generate(self, messages: list[dict], p: ChatParams, stop: threading.Event, on_text: OnText) -> tuple[str, int]:
        stream = self.llm.create_chat_completion(
            messages=with_system(messages, p.system), temperature=p.temperature, top_p=p.top_p, top_k=0,
            min_p=0.0, max_tokens=p.max_new_tokens, seed=p.seed, stream=True)
        tokens, reason = 0, "stop"
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content")
                if text:
                    tokens += 1
                    on_text(text)
                if choice.get("finish_reason"):
                    reason = choice["finish_reason"]
                if stop.is_set():
                    reason = "stopped"
                    break
        finally:
            stream.close()
        return ("length" if reason == "length" else reason if reason in ("stop", "stopped") else "stop"), tokens


def load(kind: str, base: str, threads: int, status: Status):
    """The backend for a target `prepare` made: llama.cpp for a GGUF file, transformers for the rest."""
    return LlamaCpp(Path(base), threads, status) if kind == "gguf" else Transformers(base, threads, status)
