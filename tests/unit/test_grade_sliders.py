"""The grade sliders are declared once (studio.finishing.Grade); every front end follows them."""

from __future__ import annotations

import re

import pytest

from api.schemas import GradeFields
from bot.exts.finish._cog import FinishCog, grade_caption
from bot.exts.finish._views import AdjustModal
from gpu_worker.grade import LOOKS, settings_for
from studio.errors import InvalidRecipe
from studio.finishing import GRADE_SLIDERS, Grade

SLIDERS = list(GRADE_SLIDERS)


def test_the_sliders_are_the_grades_float_fields_in_order() -> None:
    assert SLIDERS == [
        "exposure",
        "contrast",
        "saturation",
        "temperature",
        "tint",
        "grain",
        "vignette",
        "sharpen",
        "blur",
    ]
    assert list(Grade.model_fields) == ["preset", *SLIDERS, "seed"]


@pytest.mark.parametrize("name", SLIDERS)
def test_a_slider_refuses_values_past_its_range_in_its_own_words(name: str) -> None:
    slider = GRADE_SLIDERS[name]
    Grade(**{name: slider.low})
    Grade(**{name: slider.high})
    with pytest.raises(InvalidRecipe, match=re.escape(f"`{name}` must be {slider.meaning} (got")):
        Grade(**{name: slider.high + 1})


def test_the_api_fields_are_the_sliders_with_their_ranges() -> None:
    fields = {
        name: f for name, f in GradeFields.model_fields.items() if name not in ("preset", "seed", "apply")
    }
    assert list(fields) == SLIDERS
    for name, field in fields.items():
        schema = GradeFields.model_json_schema()["properties"][name]
        slider = GRADE_SLIDERS[name]
        assert (schema["minimum"], schema["maximum"], schema["description"]) == (
            slider.low,
            slider.high,
            slider.meaning,
        )
        assert field.default == 0.0


def test_the_grade_command_offers_every_slider_with_its_hint() -> None:
    # discord.py reads a command's options from its signature, so /grade lists them by hand:
    # this holds that list to the Grade's sliders.
    parameters = {p.name: p for p in FinishCog.grade.parameters}
    assert list(parameters) == ["image", "link", "number", "preset", *SLIDERS]
    for name in SLIDERS:
        assert parameters[name].description == GRADE_SLIDERS[name].hint
        assert parameters[name].default == 0.0


def test_the_adjust_form_holds_the_preset_and_the_first_four_sliders() -> None:
    assert AdjustModal.FIELDS == ("preset", "exposure", "contrast", "saturation", "temperature")


def test_captions_sign_the_offsets_and_not_the_amounts() -> None:
    grade = Grade(preset="film", exposure=0.5, tint=-10, grain=20, blur=2)
    assert grade_caption(grade) == "🎨 Before / after · film, exposure +0.5, tint -10, grain 20, blur 2"
    assert grade_caption(Grade(), short=True) == "no change"


def test_a_look_adds_its_offsets_and_stays_in_range() -> None:
    values = settings_for(Grade(temperature=90, saturation=5), LOOKS["warm"])
    assert values["temperature"] == 100.0  # 90 + 30, clamped to the slider's high end
    assert values["saturation"] == 15.0
    assert list(values) == SLIDERS
