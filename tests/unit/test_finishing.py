"""Finishing pixels: grading, export for destinations, upscaling and its tiling. Small images only."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image, ImageCms, ImageDraw

from gpu_worker.export import (
    ExportTooLarge,
    centre_of_interest,
    crop_box,
    decode_image,
    export_image,
)
from gpu_worker.grade import LOOKS, apply_grade, before_after
from gpu_worker.upscale import passes_for, resample, tiled, to_image, to_tensor, upscale, upscale_with
from studio.finishing import EXPORT_PRESETS, GRADE_PRESETS, GRADE_SLIDERS, ExportSpec, Grade
from studio.jobs import UpscaleJob, UpscalerRef

PARAMETERS = (
    "a lighthouse at dusk\nNegative prompt: blurry\nSteps: 20, Sampler: Euler, Seed: 7, Version: Atelier"
)
MAX_PIXELS = 4096 * 4096


def photo(width: int, height: int, noise: float = 8.0, seed: int = 0) -> Image.Image:
    """Something photo-like: smooth colour gradients, a pattern, a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pattern = 0.5 + 0.5 * np.sin(x / 7) * np.cos(y / 9)
    array = np.stack([x / width, y / height, pattern], -1) * 220 + 15
    array += rng.normal(0, noise, (height, width, 3))
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def pixels(image: Image.Image) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


# --- grading ------------------------------------------------------------------------------------


def test_every_grade_preset_has_a_look() -> None:
    assert LOOKS.keys() == GRADE_PRESETS.keys()


@pytest.mark.parametrize("preset", sorted(GRADE_PRESETS))
def test_every_preset_changes_the_image_and_keeps_its_size(preset: str) -> None:
    image = photo(64, 48)
    graded = apply_grade(image, Grade(preset=preset))
    assert (graded.mode, graded.size) == ("RGB", image.size)
    assert np.abs(pixels(graded) - pixels(image)).mean() > 2


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, s.high / 2 if s.high > 0 else s.low / 2) for name, s in GRADE_SLIDERS.items()],
)
def test_every_slider_changes_the_image(name: str, value: float) -> None:
    image = photo(64, 48)
    graded = apply_grade(image, Grade(**{name: value}))
    assert graded.size == image.size
    assert not np.array_equal(pixels(graded), pixels(image)), name


def test_the_identity_grade_is_exact() -> None:
    image = photo(50, 30)
    assert Grade().is_identity and Grade(seed=9).is_identity
    for grade in (Grade(), Grade(seed=9), Grade(preset="none")):
        out = apply_grade(image, grade)
        assert out is not image
        assert out.tobytes() == image.tobytes()
    rgba = image.convert("RGBA")
    assert apply_grade(rgba, Grade()).tobytes() == image.tobytes()


def test_grain_is_deterministic_by_seed() -> None:
    image = photo(64, 64, noise=0)
    first = apply_grade(image, Grade(grain=60, seed=3))
    again = apply_grade(image, Grade(grain=60, seed=3))
    other = apply_grade(image, Grade(grain=60, seed=4))
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()
    preset = Grade(preset="vintage", seed=11)
    assert apply_grade(image, preset).tobytes() == apply_grade(image, preset).tobytes()


def test_adjustments_go_the_right_way() -> None:
    image = photo(48, 48, noise=0)
    base = pixels(image)
    assert pixels(apply_grade(image, Grade(exposure=1))).mean() > base.mean() + 10
    assert pixels(apply_grade(image, Grade(exposure=-1))).mean() < base.mean() - 10
    warm = pixels(apply_grade(image, Grade(temperature=80)))
    assert (warm[..., 0] - warm[..., 2]).mean() > (base[..., 0] - base[..., 2]).mean() + 10
    magenta = pixels(apply_grade(image, Grade(tint=80)))
    assert (magenta[..., 1] - magenta[..., 0]).mean() < (base[..., 1] - base[..., 0]).mean() - 10
    grey = pixels(apply_grade(image, Grade(saturation=-100)))
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 1
    flat = pixels(apply_grade(image, Grade(contrast=-100)))
    assert flat.std() < 1
    assert pixels(apply_grade(image, Grade(contrast=80))).std() > base.std()
    vignette = pixels(apply_grade(image, Grade(vignette=100)))
    assert vignette[0, 0].mean() < base[0, 0].mean() - 20
    assert np.abs(vignette[24, 24] - base[24, 24]).max() <= 1  # the middle is left alone
    assert pixels(apply_grade(image, Grade(blur=5))).std() < base.std()


def test_presets_have_their_character() -> None:
    image = photo(64, 48)
    noir = pixels(apply_grade(image, Grade(preset="noir")))
    assert np.abs(noir[..., 0] - noir[..., 1]).max() <= 1  # black and white
    vintage = pixels(apply_grade(image, Grade(preset="vintage")))
    assert vintage.min() >= 15  # faded blacks
    green = Image.new("RGB", (32, 32), (40, 170, 50))
    film = pixels(apply_grade(green, Grade(preset="film")))
    assert (film[..., 1] - film[..., 0]).mean() < 170 - 40 - 10  # muted greens
    # teal shadows: a dark grey picks up blue-green, a light one orange
    dark, light = Image.new("RGB", (8, 8), (40, 40, 40)), Image.new("RGB", (8, 8), (210, 210, 210))
    dark_px = pixels(apply_grade(dark, Grade(preset="teal-orange")))[0, 0]
    light_px = pixels(apply_grade(light, Grade(preset="teal-orange")))[0, 0]
    assert dark_px[2] > dark_px[0] and light_px[0] > light_px[2]


def test_explicit_adjustments_go_on_top_of_a_preset() -> None:
    image = photo(48, 48)
    plain = pixels(apply_grade(image, Grade(preset="warm")))
    brighter = pixels(apply_grade(image, Grade(preset="warm", exposure=1)))
    assert brighter.mean() > plain.mean() + 10


def test_before_after_is_side_by_side() -> None:
    image = photo(80, 60)
    graded = apply_grade(image, Grade(preset="noir"))
    sheet = before_after(image, graded)
    assert sheet.height == 60 and 160 < sheet.width <= 170
    right = pixels(sheet)[40:, -40:]  # below the label: the graded half, black and white
    assert np.abs(right[..., 0] - right[..., 2]).max() <= 1


# --- export -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sources() -> dict[str, bytes]:
    """Small and large, wide and tall. Smooth, so that big PNGs encode fast."""
    return {
        "small-wide": encode(photo(64, 40, noise=0)),
        "small-tall": encode(photo(40, 64, noise=0)),
        "large-wide": encode(photo(2400, 1000, noise=0), "JPEG", quality=85),
        "large-tall": encode(photo(900, 2200, noise=0), "JPEG", quality=85),
    }


@pytest.mark.parametrize("preset", sorted(EXPORT_PRESETS))
def test_every_export_preset_hits_its_exact_size(preset: str, sources: dict[str, bytes]) -> None:
    target = EXPORT_PRESETS[preset]
    for name, data in sources.items():
        # big print PNGs take seconds to deflate: the size check is the same in JPEG
        fmt = "jpeg" if target.width * target.height > 2_000_000 and name.startswith("large") else None
        result = export_image(data, ExportSpec(preset=preset, format=fmt), PARAMETERS, MAX_PIXELS)
        out = Image.open(io.BytesIO(result.data))
        assert (result.width, result.height) == (target.width, target.height), name
        assert out.size == (target.width, target.height), name
        assert out.format == (fmt or target.format).upper()
        assert result.format == (fmt or target.format)


def test_print_presets_carry_their_dpi() -> None:
    data = encode(photo(64, 40, noise=0))
    for fmt in ("png", "jpeg"):
        result = export_image(data, ExportSpec(preset="print-4x6", format=fmt), None, MAX_PIXELS)
        dpi = Image.open(io.BytesIO(result.data)).info["dpi"]
        assert tuple(round(d) for d in dpi) == (300, 300)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "png"])
def test_a_size_limit_is_never_exceeded(fmt: str) -> None:
    data = encode(photo(400, 400, noise=12))
    for max_kb in (12, 30, 60, 200):
        spec = ExportSpec(preset="linkedin-headshot", format=fmt, max_kb=max_kb)
        try:
            result = export_image(data, spec, PARAMETERS, MAX_PIXELS)
        except ExportTooLarge:
            assert fmt == "png" and max_kb < 60, (fmt, max_kb)  # lossy formats always fit these
            continue
        assert len(result.data) <= max_kb * 1024, (fmt, max_kb)
        assert Image.open(io.BytesIO(result.data)).size == (400, 400)
        if fmt == "png":
            assert result.quality is None
        else:
            assert result.quality is not None and 1 <= result.quality <= 92
    # a generous limit leaves the usual quality; a tight one lowers it
    generous = export_image(
        data, ExportSpec(preset="linkedin-headshot", format="jpeg", max_kb=500), None, MAX_PIXELS
    )
    tight = export_image(
        data, ExportSpec(preset="linkedin-headshot", format="jpeg", max_kb=12), None, MAX_PIXELS
    )
    assert generous.quality == 92 and tight.quality is not None and tight.quality < 60


def test_a_png_over_its_limit_falls_back_to_a_palette() -> None:
    data = encode(photo(400, 400, noise=12))
    spec = ExportSpec(preset="linkedin-headshot", format="png", max_kb=80)
    result = export_image(data, spec, PARAMETERS, MAX_PIXELS)
    out = Image.open(io.BytesIO(result.data))
    assert len(result.data) <= 80 * 1024 and out.mode == "P"
    assert getattr(out, "text", {}).get("parameters") == PARAMETERS  # the recipe survives quantization


def test_a_preset_limit_applies_without_asking() -> None:
    spec = ExportSpec(preset="discord-emoji", format="jpeg")
    assert spec.limit_kb == 256
    result = export_image(encode(photo(300, 300, noise=40)), spec, None, MAX_PIXELS)
    assert len(result.data) <= 256 * 1024


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "png"])
def test_too_small_a_limit_raises(fmt: str) -> None:
    data = encode(photo(300, 200, noise=60))
    with pytest.raises(ExportTooLarge, match="8 KB limit"):
        export_image(data, ExportSpec(preset="discord-banner", format=fmt, max_kb=8), PARAMETERS, MAX_PIXELS)


def _exif_comment(image: Image.Image) -> bytes | None:
    value = image.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
    return value if isinstance(value, bytes) else None


def _source_with_metadata() -> bytes:
    """A JPEG with EXIF (camera, orientation) and an ICC profile: nothing of it may leak."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    exif[ExifTags.Base.Orientation] = 1
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(photo(120, 90, noise=0), "JPEG", exif=exif, icc_profile=icc)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "avif"])
def test_metadata_kept_or_stripped(fmt: str) -> None:
    source = _source_with_metadata()
    kept = export_image(source, ExportSpec(preset="linkedin-headshot", format=fmt), PARAMETERS, MAX_PIXELS)
    stripped = export_image(
        source,
        ExportSpec(preset="linkedin-headshot", format=fmt, keep_metadata=False),
        PARAMETERS,
        MAX_PIXELS,
    )
    kept_image, stripped_image = (Image.open(io.BytesIO(r.data)) for r in (kept, stripped))
    if fmt == "png":
        assert getattr(kept_image, "text", None) == {"parameters": PARAMETERS}
        assert getattr(stripped_image, "text", None) == {}
    else:
        comment = _exif_comment(kept_image)
        assert comment is not None and comment[8:].decode("utf-16-be") == PARAMETERS
    for key in ("exif", "icc_profile", "xmp", "parameters"):
        assert not stripped_image.info.get(key), (fmt, key)
    assert len(stripped_image.getexif()) == 0
    assert b"SecretCam" not in kept.data and b"SecretCam" not in stripped.data


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_sd_parsers_reads_the_recipe_back(fmt: str, tmp_path: Path) -> None:
    from sd_parsers import ParserManager

    result = export_image(
        encode(photo(64, 64)), ExportSpec(preset="linkedin-headshot", format=fmt), PARAMETERS, MAX_PIXELS
    )
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(result.data)
    info = ParserManager().parse(path)
    assert info is not None
    assert [p.value for p in info.prompts] == ["a lighthouse at dusk"]


def test_alpha_is_flattened_on_white_for_jpeg_and_kept_for_png() -> None:
    clear = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(clear).rectangle((20, 20, 40, 40), fill=(200, 0, 0, 255))
    data = encode(clear)
    jpeg = Image.open(
        io.BytesIO(export_image(data, ExportSpec(preset="linkedin-headshot"), None, MAX_PIXELS).data)
    )
    assert jpeg.mode == "RGB" and min(jpeg.getpixel((5, 5))) > 245  # type: ignore[arg-type]
    spec = ExportSpec(preset="linkedin-headshot", format="png", focus_x=50, focus_y=50)
    png = Image.open(io.BytesIO(export_image(data, spec, None, MAX_PIXELS).data))
    assert png.mode == "RGBA" and png.getpixel((5, 5))[3] == 0  # type: ignore[index]


def test_decoding_checks_the_pixel_count_first_and_applies_exif_orientation() -> None:
    with pytest.raises(ValueError, match="pixel limit"):
        decode_image(encode(photo(100, 100)), max_pixels=5_000)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored landscape, shown portrait
    assert decode_image(encode(photo(80, 40), "JPEG", exif=exif), MAX_PIXELS).size == (40, 80)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    ramp = (np.arange(64 * 32).reshape(32, 64) * 30).astype(np.uint16)
    decoded = pixels(decode_image(encode(Image.fromarray(ramp)), MAX_PIXELS))
    assert abs(decoded.mean() - ramp.mean() / 256) < 2


def test_centre_of_interest_finds_an_off_centre_bright_object() -> None:
    image = Image.new("RGB", (400, 200), (10, 10, 12))
    ImageDraw.Draw(image).ellipse((280, 30, 340, 90), fill=(250, 240, 220))
    x, y = centre_of_interest(image)
    assert abs(x - 77.5) < 5 and abs(y - 30) < 6
    assert centre_of_interest(Image.new("RGB", (300, 100), (90, 90, 90))) == (50.0, 50.0)


def test_the_crop_follows_the_focus() -> None:
    image = Image.new("RGB", (200, 100), (220, 0, 0))
    ImageDraw.Draw(image).rectangle((100, 0, 200, 100), fill=(0, 0, 220))
    data = encode(image)
    for focus_x, channel in ((0, 0), (100, 2)):
        spec = ExportSpec(preset="linkedin-headshot", focus_x=focus_x, focus_y=50)
        out = pixels(Image.open(io.BytesIO(export_image(data, spec, None, MAX_PIXELS).data)))
        assert out[..., channel].mean() > 200
    # no focus: the centre of interest (a bright spot on the right) leads the crop
    spot = Image.new("RGB", (300, 100), (20, 20, 20))
    ImageDraw.Draw(spot).ellipse((240, 40, 260, 60), fill=(255, 255, 255))
    assert crop_box(spot.size, (1, 1), centre_of_interest(spot)) == (200.0, 0.0, 300.0, 100.0)
    assert crop_box((300, 100), (1, 1), (50, 50)) == (100.0, 0.0, 200.0, 100.0)


# --- upscaling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 4])
def test_upscaling_without_a_model_resamples_to_exactly_the_factor(factor: int) -> None:
    image = photo(37, 23)
    out, method = upscale(image, UpscaleJob(image=b"", factor=factor), "cpu", {})
    assert out.size == (37 * factor, 23 * factor) and out.mode == "RGB" and method == "resampling"
    assert resample(image, factor).size == out.size


def _nearest(scale: int) -> Any:
    return lambda tile: torch.nn.functional.interpolate(tile, scale_factor=scale, mode="nearest")


def _blur_then_nearest(scale: int) -> Any:
    """A local operation (3x3 box blur, zero-padded like a conv) then nearest: reach of 1 pixel."""
    kernel = torch.full((3, 1, 3, 3), 1 / 9)

    def run(tile: torch.Tensor) -> torch.Tensor:
        blurred = torch.nn.functional.conv2d(
            torch.nn.functional.pad(tile, (1, 1, 1, 1), mode="replicate"), kernel, groups=3
        )
        return torch.nn.functional.interpolate(blurred, scale_factor=scale, mode="nearest")

    return run


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "scale"),
    [(70, 45, 32, 8, 3), (64, 64, 64, 16, 2), (9, 100, 40, 4, 4)],
)
def test_tiling_gives_the_untiled_result(
    height: int, width: int, tile: int, overlap: int, scale: int
) -> None:
    image = torch.rand((1, 3, height, width), generator=torch.Generator().manual_seed(0))
    calls: list[tuple[int, ...]] = []

    def counted(tile_in: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(tile_in.shape))
        return _nearest(scale)(tile_in)  # type: ignore[no-any-return]

    assert torch.equal(tiled(image, tile, overlap, scale, counted), _nearest(scale)(image))
    assert all(h <= tile and w <= tile for _, _, h, w in calls)
    blurred = tiled(image, tile, overlap, scale, _blur_then_nearest(scale))
    assert torch.allclose(blurred, _blur_then_nearest(scale)(image), atol=1e-6)


def test_tiling_refuses_a_wrong_tile_function() -> None:
    with pytest.raises(ValueError, match="expected"):
        tiled(torch.zeros((1, 3, 10, 10)), 32, 8, 2, _nearest(3))
    with pytest.raises(ValueError, match="no core"):
        tiled(torch.zeros((1, 3, 10, 10)), 32, 16, 2, _nearest(2))


def test_model_passes_and_exact_sizes() -> None:
    assert [passes_for(s, 2) for s in (2, 3, 4, 8)] == [1, 1, 1, 1]
    assert [passes_for(s, 4) for s in (2, 3, 4, 8)] == [2, 1, 1, 1]
    with pytest.raises(ValueError):
        passes_for(1, 2)
    image = photo(21, 13)
    for scale in (2, 3, 4):
        for factor in (2, 4):
            assert upscale_with(image, factor, scale, 32, _nearest(scale)).size == (21 * factor, 13 * factor)
    # a 2x model run twice for 4x is the same as nearest 4x
    assert (
        upscale_with(image, 4, 2, 32, _nearest(2)).tobytes()
        == image.resize((84, 52), Image.Resampling.NEAREST).tobytes()
    )
    assert to_image(to_tensor(image)).tobytes() == image.tobytes()


def test_tiles_report_progress_across_passes() -> None:
    seen: list[tuple[int, int]] = []
    upscale_with(photo(70, 50), 4, 2, 32, _nearest(2), lambda done, total: seen.append((done, total)))
    total = seen[-1][1]
    assert seen == [(n, total) for n in range(1, total + 1)] and total > 2

    def cancel(done: int, total: int) -> None:
        raise InterruptedError

    with pytest.raises(InterruptedError):
        upscale_with(photo(70, 50), 2, 2, 32, _nearest(2), cancel)


def _compact_model(path: Path, scale: int) -> Path:
    """A tiny random-weight Real-ESRGAN Compact (SRVGGNetCompact) that spandrel recognises."""
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact  # type: ignore[import-not-found,unused-ignore]

    torch.manual_seed(scale)
    model = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=scale)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_a_spandrel_model_upscales_tiled_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("spandrel")
    from spandrel import ModelLoader  # type: ignore[import-not-found,unused-ignore]

    image = photo(60, 40)  # in 32-pixel tiles: 4 x 3 of them
    four = _compact_model(tmp_path / "compact-4x.safetensors", 4)
    ref = UpscalerRef(id="compact", kind="spandrel", source=str(four), scale=4)
    cache: dict[str, Any] = {}
    out, method = upscale(image, UpscaleJob(image=b"", factor=4, model=ref, tile=32), "cpu", cache)
    assert method == "compact" and out.size == (240, 160) and str(four) in cache
    whole = to_image(ModelLoader().load_from_file(four)(to_tensor(image)))
    assert np.abs(pixels(out) - pixels(whole)).max() <= 1  # tiles leave no seams
    half, _ = upscale(image, UpscaleJob(image=b"", factor=2, model=ref), "cpu", cache)
    assert half.size == (120, 80)
    two = _compact_model(tmp_path / "compact-2x.safetensors", 2)
    ref2 = UpscalerRef(id="compact2", kind="spandrel", source=str(two), scale=2)
    twice, _ = upscale(image, UpscaleJob(image=b"", factor=4, model=ref2), "cpu", cache)
    assert twice.size == (240, 160)


def test_a_broken_upscaler_file_is_a_load_error(tmp_path: Path) -> None:
    pytest.importorskip("spandrel")
    from gpu_worker.pipelines import ModelLoadError

    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a model")
    ref = UpscalerRef(id="broken", kind="spandrel", source=str(path))
    with pytest.raises(ModelLoadError, match="broken"):
        upscale(photo(8, 8), UpscaleJob(image=b"", factor=2, model=ref), "cpu", {})


def _tiny_x4_upscaler(folder: Path) -> Path:
    """A tiny random-weight StableDiffusionUpscalePipeline (x4: a 3-level VAE), saved to disk."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    from gpu_worker.tiny import _text_config, write_tokenizer

    torch.manual_seed(0)
    vocab_size = write_tokenizer(folder / "tokenizer-src")
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        in_channels=7,  # 4 latent + 3 low-res image channels
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        norm_num_groups=8,
        cross_attention_dim=32,
        num_class_embeds=400,  # the noise level is a class label
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        scaling_factor=0.08333,
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=CLIPTextModel(_text_config(vocab_size)),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer-src"),
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=350,
    )
    pipe.save_pretrained(folder / "x4")
    return folder / "x4"


def test_the_diffusers_x4_upscaler_runs_tiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gpu_worker.upscale

    monkeypatch.setattr(gpu_worker.upscale, "DIFFUSERS_STEPS", 1)  # the path, not the quality
    source = _tiny_x4_upscaler(tmp_path)
    ref = UpscalerRef(id="x4-tiny", kind="diffusers", source=str(source))
    cache: dict[str, Any] = {}
    image = photo(30, 13)  # with 32-pixel tiles: two tiles, odd sizes padded to a multiple of 8
    job = UpscaleJob(image=b"", factor=4, model=ref, tile=32, prompt="a cat")
    out, method = upscale(image, job, "cpu", cache)
    assert (out.size, method) == ((120, 52), "x4-tiny") and str(source) in cache
