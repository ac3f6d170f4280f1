"""The tiny preset's tokenizer: a byte-level BPE trained here with `tokenizers` on the text the model will see.

Run it as ``mmcot train tokenizer --preset tiny --config recipes/tiny-tokenizer.yaml`` (the corpus is the rendered
training conversations of every puzzle family, so every word the model meets has a token). The smol preset uses
SmolLM2's own tokenizer and has no tokenizer stage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmcot.models.card import write_card

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
PAD, EOS, IMAGE = "<|endoftext|>", "<|im_end|>", "<image>"


@dataclass
class TokenizerConfig:
    preset: str = field(default="tiny", metadata={"help": "Model preset (only tiny trains its own tokenizer)."})
    output_dir: str = field(default="runs/tiny/tokenizer", metadata={"help": "Where the tokenizer folder is written."})
    vocab_size: int = field(default=2048, metadata={"help": "BPE vocabulary size, special tokens included."})
    min_frequency: int = field(default=2, metadata={"help": "A pair must occur this often to be merged."})
    samples_per_family: int = field(
        default=400, metadata={"help": "Training conversations per puzzle family rendered into the corpus."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the corpus' puzzles (train split)."})

    def __post_init__(self):
        if self.vocab_size < 300:
            raise ValueError(f"vocab_size must be at least 300 (256 bytes + specials), got {self.vocab_size}")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2):
    """A byte-level BPE over ``texts`` wrapped as a transformers fast tokenizer with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=None,
        extra_special_tokens={"image_token": IMAGE},
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )


def main(cfg: TokenizerConfig) -> Path:
    """Render the training corpus, train the BPE, save it with a model card; returns the output folder."""
    from mmcot.models.data import tokenizer_corpus
    from mmcot.models.stage import StageError, load_preset, log_config

    if not load_preset(cfg.preset).trains_tokenizer:
        raise StageError(f"the {cfg.preset} preset uses its base model's tokenizer; there is nothing to train")
    log_config(cfg, "tokenizer")
    start = time.time()
    texts = list(tokenizer_corpus(cfg.samples_per_family, cfg.seed))
    tok = train_tokenizer(texts, cfg.vocab_size, cfg.min_frequency)
    out = Path(cfg.output_dir)
    tok.save_pretrained(out)
    n_tokens = sum(len(tok(t)["input_ids"]) for t in texts)
    n_chars = sum(len(t) for t in texts)
    (out / "mmcot_stage.json").write_text(json.dumps({"stage": "tokenizer", "config": asdict(cfg)}, indent=2))
    write_card(
        out,
        title="mmcot tiny tokenizer",
        stage="tokenizer",
        config=asdict(cfg),
        facts={
            "data": f"{len(texts)} rendered training conversations ({cfg.samples_per_family} per puzzle family)",
            "vocabulary": f"{len(tok)} tokens (byte-level BPE; specials {', '.join(SPECIAL_TOKENS)})",
            "compression": f"{n_chars / max(n_tokens, 1):.2f} characters per token on the corpus",
        },
        wall_s=time.time() - start,
    )
    return out
