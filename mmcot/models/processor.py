"""The processor shared by both presets: CLIP image preprocessing at the native resolution, a tokenizer, and mmcot's
chat template (`chat_template.jinja`), wrapped as a ``LlavaProcessor`` that ``AutoProcessor`` reloads.

Images are resized (not cropped: puzzle content reaches the borders) to ``image_size`` squared. The processor and the
model agree on the image-token count: (image_size / patch_size)^2 tokens per image, CLS dropped.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_PATH = Path(__file__).with_name("chat_template.jinja")
MEAN = [0.5, 0.5, 0.5]
STD = [0.5, 0.5, 0.5]
TEXT_FIRST = "set text_first = true"  # in a folder's chat template: a model trained with text before images


def chat_template(think: bool = False, text_first: bool = False) -> str:
    """mmcot's chat template; ``think=True`` makes the generation prompt start with ``<think>`` by default,
    ``text_first=True`` renders a user turn's text before its images (for a model trained so)."""
    text = TEMPLATE_PATH.read_text()
    if text_first:
        text = text.replace("set text_first = false", TEXT_FIRST)
    return thinking(text) if think else text


def thinking(template: str) -> str:
    """A copy of mmcot's chat ``template`` (any version a model folder carries) whose generation prompt starts with
    ``<think>`` by default."""
    return template.replace("set think_default = false", "set think_default = true")


def build_image_processor(image_size: int):
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        do_resize=True,
        size={"height": image_size, "width": image_size},
        do_center_crop=False,
        do_rescale=True,
        do_normalize=True,
        image_mean=MEAN,
        image_std=STD,
        do_convert_rgb=True,
        resample=3,  # bicubic
    )


def build_processor(tokenizer, image_size: int, patch_size: int):
    """A LlavaProcessor whose image-token bookkeeping matches a CLIP tower with a CLS token and the default strategy."""
    from transformers import LlavaProcessor

    return LlavaProcessor(
        image_processor=build_image_processor(image_size),
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=chat_template(),
        image_token="<image>",
    )
