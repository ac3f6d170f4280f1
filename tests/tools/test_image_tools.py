"""Image tools on a known scene: what each produces, how operations chain by id, and the errors a model can fix."""

import io

import pytest
from PIL import Image

from mmcot.tools import ToolCall, ToolContext, run_tool_call
from mmcot.tools.images import ImageError, open_image


def run(ctx, name, **arguments):
    return run_tool_call(ToolCall(name, arguments), ctx)


def pixel(ctx, image_id, xy):
    return ctx.images[image_id].convert("RGB").getpixel(xy)


def test_crop_pixels_and_normalized(ctx):
    assert run(ctx, "crop", box=[20, 20, 60, 60]).text == "image_1 (40x40): crop of image_0 box [20, 20, 60, 60]"
    assert set(ctx.images["image_1"].getdata()) == {(220, 30, 30)}
    result = run(ctx, "crop", image="image_0", box=[0.5, 0, 1, 1], normalized=True)
    assert result.text.startswith("image_2 (100x100): crop of image_0 box [100, 0, 200, 100]")
    clipped = run(ctx, "crop", image="image_0", box=[150, -10, 400, 50])
    assert clipped.text.startswith("image_3 (50x50): crop of image_0 box [150, 0, 200, 50]")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"box": [60, 20, 20, 60]}, "right > left"),
        ({"box": [300, 300, 400, 400]}, "outside the 200x100 image"),
        ({"box": [0.1, 0.1, 0.5, 0.5]}, "if these are fractions of the size, pass normalized=true"),
        ({"box": [0, 0, 2, 1], "normalized": True}, "must have values between 0 and 1"),
        ({"box": [0, 0, 5, 5], "image": "image_9"}, "no image 'image_9'; the images are image_0"),
    ],
)
def test_crop_errors(ctx, arguments, message):
    result = run(ctx, "crop", **arguments)
    assert message in result.error and not result.images and len(ctx.images) == 1


def test_image_ids_are_lenient_about_form(ctx):
    assert run(ctx, "flip", image="0").ok
    assert run(ctx, "flip", image="<image_1>").text.startswith("image_2 (200x100): image_1 flipped")
    assert run_tool_call(ToolCall("flip"), ToolContext()).error == "there is no image in this conversation yet"


def test_zoom_box_enlarges_to_model_size(ctx):
    ctx.image_size = 96
    result = run(ctx, "zoom", box=[20, 20, 60, 60])
    assert result.text.startswith("image_1 (96x96): zoom of image_0 box [20, 20, 60, 60], 2.4x")
    assert pixel(ctx, "image_1", (48, 48)) == (220, 30, 30)
    assert run(ctx, "zoom", image="image_0", box=[0, 0, 100, 50], size=50).text.startswith("image_2 (50x25)")
    assert "either box" in run(ctx, "zoom").error
    assert "either box" in run(ctx, "zoom", box=[0, 0, 5, 5], cell="A1").error


def test_grid_then_zoom_into_a_cell(ctx):
    result = run(ctx, "grid", rows=2, cols=4)
    assert result.text == "image_1 (200x100): image_0 with a 4x2 grid, cells A1 (top left) to D2"
    assert pixel(ctx, "image_1", (50, 75)) == (255, 0, 0)  # a grid line
    zoomed = run(ctx, "zoom", cell="d1", size=50)  # the latest image is the grid: crop the clean original
    assert zoomed.text.startswith("image_2 (50x50): zoom of image_0 cell D1 of the 4x2 grid")
    assert (255, 0, 0) not in set(ctx.images["image_2"].getdata())
    # naming the original also finds its grid
    assert run(ctx, "zoom", image="image_0", cell="A1").text.startswith("image_3 (448x448): zoom of image_0 cell A1")
    assert "no cell 'E1' in the 4x2 grid; cells are A1 to D2" in run(ctx, "zoom", image="image_1", cell="E1").error
    assert "image_3 has no grid; call grid(image='image_3') first" in run(ctx, "zoom", cell="A1").error


def test_rotate_flip(ctx):
    assert run(ctx, "rotate", degrees=90).text.startswith("image_1 (100x200): image_0 rotated 90 degrees")
    assert pixel(ctx, "image_1", (30, 170)) == (220, 30, 30)  # the top-left square went to the bottom left
    assert run(ctx, "rotate", image="image_0", degrees=45, expand=False).text.startswith("image_2 (200x100)")
    run(ctx, "flip", image="image_0", direction="horizontal")
    assert pixel(ctx, "image_3", (160, 40)) == (220, 30, 30)
    run(ctx, "flip", image="image_0", direction="vertical")
    assert pixel(ctx, "image_4", (40, 60)) == (220, 30, 30)


def test_adjust_grayscale_threshold(ctx):
    result = run(ctx, "adjust", brightness=0.5, contrast=2)
    assert result.text.startswith("image_1 (200x100): image_0 with contrast x2, brightness x0.5")
    assert pixel(ctx, "image_1", (5, 5))[0] < 200  # white got darker
    assert "nothing to adjust" in run(ctx, "adjust").error
    assert "between 0.0 and 10.0" in run(ctx, "adjust", sharpness=50).error
    run(ctx, "grayscale", image="image_0")
    assert ctx.images["image_2"].mode == "L"
    run(ctx, "grayscale", image="image_0", threshold=128)
    assert set(ctx.images["image_3"].getdata()) == {0, 255}


def test_draw_boxes_points_labels(ctx):
    result = run(ctx, "draw", boxes=[[10, 10, 70, 70]], points=[[150, 50]], labels=["square", "circle"], color="lime")
    assert result.text.startswith("image_1 (200x100): image_0 with 1 box, 1 point drawn in lime")
    assert pixel(ctx, "image_1", (10, 40)) == (0, 255, 0)
    assert pixel(ctx, "image_1", (150, 50)) == (0, 255, 0)
    assert "nothing to draw" in run(ctx, "draw").error
    assert "unknown color 'blurple'" in run(ctx, "draw", points=[[1, 1]], color="blurple").error
    assert "3 labels for 1 boxes and points" in run(ctx, "draw", points=[[1, 1]], labels=["a", "b", "c"]).error


def test_image_info(ctx):
    result = run(ctx, "image_info", colors=3)
    assert result.text.startswith("image_0: 200x100 pixels, mode RGB; dominant colors: white #ffffff")
    assert "red #" in result.text and "blue #" in result.text
    assert not result.images and list(ctx.images) == ["image_0"]


def test_chain_by_id(ctx):
    for name, arguments in [
        ("grid", {}),
        ("zoom", {"cell": "B2"}),
        ("adjust", {"contrast": 2.0}),
        ("rotate", {"degrees": 180}),
    ]:
        assert run(ctx, name, **arguments).ok
    assert list(ctx.images) == [f"image_{i}" for i in range(5)]
    assert run(ctx, "image_info").text.startswith("image_4:")


def test_huge_outputs_are_refused():
    ctx = ToolContext(images={"image_0": Image.new("RGB", (6000, 6000))})
    result = run(ctx, "rotate", degrees=45)
    assert "above the limit of 40000000 pixels" in result.error and len(ctx.images) == 1


def test_image_tools_on_a_large_image_are_quick():
    ctx = ToolContext(images={"image_0": Image.new("RGB", (2048, 2048), "gray")})
    for name, arguments in [("zoom", {"box": [0, 0, 512, 512]}), ("grid", {}), ("image_info", {})]:
        assert run(ctx, name, **arguments).ok


def test_untrusted_images_are_refused_clearly(tmp_path):
    for side, message in [(8000, "8000x8000 = 64000000 pixels, above the limit"), (20000, "decompression bomb")]:
        bomb = io.BytesIO()
        Image.new("1", (side, side)).save(bomb, format="PNG")  # a few KB that decode to millions of pixels
        with pytest.raises(ImageError, match=message):
            open_image(bomb.getvalue())
    with pytest.raises(ImageError, match="not a readable image"):
        open_image(b"GIF89a broken")
    with pytest.raises(ImageError, match="cannot read image file .*missing.png: No such file"):
        open_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageError, match="notes.png is not a readable image: PIL knows no such format"):
        open_image(tmp_path / "notes.png")
