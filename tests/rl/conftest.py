"""Fixtures for the RL tests: a few puzzle items, and ``teach`` (overfit the random tiny model of ``tiny_folder`` on
given conversations, so a real model really emits what a test needs)."""

import pytest
import torch

# One thread: on a shared, busy CPU two OpenMP threads run small matmuls about 15x slower than one (measured here).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def items():
    from mmcot.evals.puzzles import generate

    return generate(["count", "small_object"], n=4, seed=0, split="train")


@pytest.fixture(scope="session")
def teach():
    """``teach(folder, conversations, out) -> (out, final loss)``, see :func:`_teach`."""
    return _teach


def _teach(folder, conversations, out, steps=150, lr=3e-3):
    """Overfit the model in ``folder`` on ``conversations`` (full-sequence loss) and save it to ``out``: a real
    model that really emits what the test needs (a tool call, a right answer), in a second or two."""
    from mmcot.models.load import load_model

    torch.manual_seed(0)
    model, processor = load_model(str(folder))
    texts, images = [], []
    for conv in conversations:
        texts.append(processor.apply_chat_template(conv, tokenize=False))
        images += [
            p["image"] for m in conv if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image"
        ]
    batch = processor(text=texts, images=images or None, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out, loss.item()
