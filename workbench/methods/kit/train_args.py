"""What every trainer of the workbench shares, built once from a method's params: the trainer
config, the model loaded for its mode (lora, qlora, full, last_layer) and the adapter config.

Each method passes these to its own TRL config (SFTConfig, RewardConfig, DPOConfig) and adds
what only it needs. On the CPU: use_cpu=True and no mixed precision. The steps a recipe takes
with them (build the trainer, train it to the end) are in `recipe`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench import models
from workbench.methods.kit import sharding, tracking
from workbench.params import ParamError
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec, Runtime

DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def dtype_name(runtime: Runtime) -> str:
    """The torch dtype of the weights for the resolved precision (fp32 otherwise)."""
    return DTYPES.get(runtime.precision, "float32")


def prepare_base(spec: JobSpec, job: JobContext):
    """(model folder, tokenizer): the base resolved (the embedded default converted once, with
    progress events) and recorded in the spec."""
    job.status("Preparing the base model")
    folder = models.resolve(spec.base_model, status=job.status)
    spec.model_path = str(folder)
    job.check_stop()
    return folder, models.load_tokenizer(folder)


def trainer_args(p: Any, job: JobContext, runtime: Runtime, has_eval: bool) -> dict[str, Any]:
    args = dict(
        output_dir=str(job.checkpoints_dir),
        learning_rate=p.learning_rate,
        num_train_epochs=p.epochs,
        max_steps=p.max_steps if p.max_steps > 0 else -1,
        per_device_train_batch_size=p.batch_size,
        per_device_eval_batch_size=p.batch_size,
        gradient_accumulation_steps=p.grad_accum,
        max_length=p.max_length,
        warmup_steps=p.warmup if p.warmup < 1 else int(p.warmup),
        lr_scheduler_type=p.scheduler,
        weight_decay=p.weight_decay,
        logging_steps=p.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=p.save_steps,
        eval_strategy="steps" if has_eval and p.eval_steps > 0 else "no",
        eval_steps=p.eval_steps or None,
        gradient_checkpointing=p.gradient_checkpointing,
        use_cpu=runtime.device == "cpu",
        bf16=runtime.precision == "bf16",
        fp16=runtime.precision == "fp16",
        seed=runtime.seed,
        **tracking.trainer_settings(p, job.spec.project, job.run_dir),
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataset_num_proc=None,
    )
    return {**args, **sharding.trainer_settings(p, runtime)}  # FSDP on several processes when chosen


ADAPTER_MODES = ("lora", "qlora")  # modes that train (and save) a PEFT adapter
TRL_ONLY_ARGS = ("max_length", "dataset_num_proc")  # trainer_args keys a plain transformers Trainer lacks


def hf_trainer_args(p: Any, job: JobContext, runtime: Runtime, has_eval: bool) -> dict[str, Any]:
    """`trainer_args` for transformers' own TrainingArguments (methods that need no TRL trainer)."""
    return {k: v for k, v in trainer_args(p, job, runtime, has_eval).items() if k not in TRL_ONLY_ARGS}


def peft_config(p: Any, task_type: str = "CAUSAL_LM", modules_to_save: list[str] | None = None):
    """The LoraConfig of the adapter for mode lora or qlora (DoRA and rsLoRA as the params say);
    None for full and last_layer, which train the model's own weights."""
    if getattr(p, "mode", "lora") not in ADAPTER_MODES:
        return None
    from peft import LoraConfig

    targets = p.target_modules.strip()
    return LoraConfig(
        r=p.lora_r, lora_alpha=p.lora_alpha, lora_dropout=p.lora_dropout, task_type=task_type,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()],
        modules_to_save=modules_to_save,
        use_dora=bool(getattr(p, "use_dora", False)),
        use_rslora=bool(getattr(p, "use_rslora", False)),
    )


def check_mode(p: Any, runtime: Runtime) -> None:
    """Refuse a mode this machine cannot train, before anything is loaded.

    QLoRA needs a CUDA device and bitsandbytes: its 4-bit kernels on the CPU are too new to trust
    with a run, and a run that silently fell back to LoRA would not be the run that was asked for.
    A metric sink (`report_to`) whose package is missing is refused here too."""
    tracking.check(getattr(p, "report_to", "none"))
    if getattr(p, "mode", "lora") != "qlora":
        return
    if runtime.device != "cuda":
        raise ParamError("mode=qlora needs a CUDA GPU: 4-bit training with bitsandbytes on the CPU is not "
                         "trustworthy. Use mode=lora on this machine (same adapters, full-precision base), "
                         "or run on a GPU.")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ParamError("mode=qlora needs the bitsandbytes package, which is not installed: "
                         "`pip install bitsandbytes` on this GPU machine, or use mode=lora.")


def load_model(p: Any, folder: Path, runtime: Runtime, task: str = "causal", **kw):
    """The model to train, loaded the way its mode needs.

    task "causal" loads a causal LM; "seq_cls" a sequence classifier (pass num_labels, and id2label /
    label2id to name the classes; pad_token_id sets where the score is read). qlora: 4-bit linear
    layers, the rest 16-bit (the adapter comes from `peft_config`); last_layer: everything
    frozen but the output head; full and lora: the plain model."""
    import torch

    check_mode(p, runtime)
    pad_token_id = kw.pop("pad_token_id", None)
    if task == "causal":
        from transformers import AutoModelForCausalLM as auto_class
    elif task == "seq_cls":
        from transformers import AutoModelForSequenceClassification as auto_class
    else:
        raise ValueError(f"Unknown task '{task}': expected causal or seq_cls.")
    dtype = getattr(torch, dtype_name(runtime))
    # Full and the output head train fp32 master weights under 16-bit autocast (16-bit weights would round
    # away every update smaller than 1/256 of the weight); what stays frozen is cast to 16 bits.
    master = p.mode in ("full", "last_layer") and dtype != torch.float32
    if p.mode == "qlora":
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=p.quant_type,
                                   bnb_4bit_use_double_quant=p.double_quant,
                                   bnb_4bit_compute_dtype=getattr(torch, p.compute_dtype))
        model = auto_class.from_pretrained(folder, quantization_config=quant, dtype=dtype,
                                           device_map={"": torch.cuda.current_device()}, **kw)
        # The weights that stay unquantised (embeddings, norms, the output layer) stay 16-bit and frozen, as
        # TRL and Unsloth keep them (peft's prepare_model_for_kbit_training would make them fp32: the embeddings
        # of a 150k vocabulary alone would then outweigh the 4-bit layers of a 0.5B model); a head that trains
        # (a classifier's or a reward model's score) is fp32.
        if task == "seq_cls":
            for name in head_names(model):
                getattr(model, name).float()
        if p.gradient_checkpointing:  # the adapters' gradients flow through checkpointed layers of frozen inputs
            model.enable_input_require_grads()
    else:
        model = auto_class.from_pretrained(folder, dtype=torch.float32 if master else dtype, **kw)
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    if p.mode == "last_layer":
        train_head_only(model)
    if master:
        for param in model.parameters():
            if not param.requires_grad:
                param.data = param.data.to(dtype)
    if p.mode != "qlora":  # under FSDP it stays on the CPU: sharding moves each rank's part of each layer to its GPU
        model = model.to("cpu" if sharding.sharded(runtime) else runtime.device)
    return model


def reference_kwargs(p: Any, runtime: Runtime) -> dict[str, Any]:
    """What a TRL config of a method with a frozen reference takes so that the reference it builds for a
    full fine-tuning is 16-bit, not a copy of the policy's fp32 master weights."""
    if getattr(p, "mode", "") != "full" or dtype_name(runtime) == "float32":
        return {}
    return {"model_init_kwargs": {"dtype": dtype_name(runtime)}}


def head_names(model) -> list[str]:
    """The output head(s): every top-level module that is not the base model (lm_head, score...)."""
    return [name for name, _ in model.named_children() if name != model.base_model_prefix]


def untie_output(model) -> None:
    """Give a tied output layer its own copy of the input embeddings' weights.

    Tied models (SmolLM2's) share one matrix between input and output; training the head alone
    must leave the input embeddings as they were. The config says untied, so the saved model
    stores both matrices and loads them as two."""
    import torch

    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    if head is None or embeddings is None or head.weight is not embeddings.weight:
        return
    head.weight = torch.nn.Parameter(embeddings.weight.detach().clone())
    model.config.tie_word_embeddings = False
    text_config = model.config.get_text_config()
    if text_config is not model.config:
        text_config.tie_word_embeddings = False
    model.all_tied_weights_keys = model.get_expanded_tied_weights_keys(all_submodels=True)


def train_head_only(model) -> list[str]:
    """Freeze every parameter except the output head's; returns the head names."""
    untie_output(model)
    heads = head_names(model)
    if not heads:
        raise ValueError(f"{type(model).__name__} has no output head apart from its base model.")
    for name, param in model.named_parameters():
        param.requires_grad = name.split(".")[0] in heads
    return heads

