"""One training step of TRL's DPO, KTO and SFT trainers on a Dojo export.

Run inside an environment with ``trl`` and a CPU ``torch`` (the slow tier in
``test_trl.py`` builds one): ``python trl_step.py EXPORT_DIR WORK_DIR``. Loads
every config and split with ``datasets``, applies TRL's chat-template helper to
every row, and trains one step of each trainer on a tiny, randomly initialised
Llama with a tokenizer trained on the export itself (nothing is downloaded).
Prints one JSON line: rows templated per config and each trainer's loss.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import (
    DPOConfig,
    DPOTrainer,
    KTOConfig,
    KTOTrainer,
    SFTConfig,
    SFTTrainer,
    maybe_apply_chat_template,
)

from datasets import load_dataset

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


def load(export: Path, config: str) -> dict:
    files = {
        p.name.split("-")[0]: str(export / config / f"{p.name.split('-')[0]}-*.parquet")
        for p in (export / config).glob("*.parquet")
    }
    return load_dataset("parquet", data_files=files)


def tokenizer_for(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<|pad|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=800, special_tokens=SPECIAL))
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|end|>", pad_token="<|pad|>", chat_template=TEMPLATE
    )


def main() -> None:
    export, work = Path(sys.argv[1]), Path(sys.argv[2])
    torch.manual_seed(0)
    data = {c: load(export, c) for c in ("preference", "unpaired", "sft")}
    texts = [
        m["content"] for split in data["sft"].values() for row in split for m in row["messages"]
    ]
    tokenizer = tokenizer_for(texts)
    templated: dict[str, int] = {}
    for config, dd in data.items():
        n = 0
        for split in dd.values():
            for row in split:
                out = maybe_apply_chat_template(row, tokenizer)
                assert all(isinstance(v, str) and v for k, v in out.items() if k != "label"), out
                n += 1
        templated[config] = n

    def tiny() -> str:
        cfg = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.eos_token_id,
        )
        path = work / "tiny-llama"  # saved, so DPO can load its reference model from it
        LlamaForCausalLM(cfg).save_pretrained(path)
        tokenizer.save_pretrained(path)
        return str(path)

    model = tiny()

    common = dict(
        max_steps=1,
        per_device_train_batch_size=2,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        learning_rate=1e-3,
    )
    losses: dict[str, float] = {}
    runs = [
        ("dpo", DPOTrainer, DPOConfig, "preference", {"max_length": 2048}),
        ("kto", KTOTrainer, KTOConfig, "unpaired", {"max_length": 2048}),
        ("sft", SFTTrainer, SFTConfig, "sft", {"max_length": 2048}),
    ]
    for name, trainer_cls, config_cls, config, extra in runs:
        args = config_cls(output_dir=str(work / name), **common, **extra)
        trainer = trainer_cls(
            model=model,
            args=args,
            train_dataset=data[config]["train"],
            processing_class=tokenizer,
        )
        result = trainer.train()
        losses[name] = float(result.training_loss)
        assert math.isfinite(losses[name]), (name, losses[name])
    print(json.dumps({"templated": templated, "losses": losses}))


if __name__ == "__main__":
    main()
