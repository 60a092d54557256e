"""Request and response bodies. Every field is bounded, so bad input is a 422 with a reason.

The bounds mirror the domain's (the Recipe, the Forge, the Finisher), which check again: the
schema makes the OpenAPI document precise, the domain stays the authority.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import UploadFile
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from studio.families import ASPECTS
from studio.finishing import EXPORT_PRESETS, GRADE_PRESETS, GRADE_SLIDERS, ExportFormat
from studio.recipe import (
    MAX_BATCH,
    MAX_GUIDANCE,
    MAX_NEGATIVE_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STEPS,
    SAMPLERS,
)

MAX_BATCH_ROWS = 10_000  # the schema's hard bound; the setting api_max_batch_rows is the real one
MAX_CSV_CHARS = 2_000_000


@dataclass(frozen=True)
class OneOf:
    """``Annotated[str, OneOf(values, what)]``: one of ``values``, listed as an enum in the schema."""

    values: tuple[str, ...]
    what: str

    def check(self, value: str) -> str:
        if value not in self.values:
            raise ValueError(f"{self.what} must be one of {', '.join(self.values)}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, _: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "enum": list(self.values)}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Prompt = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS + 1000,  # inline flags take room too; the prompt itself is checked
        description="What to see, with optional inline flags (--ar 3:2 --seed 42 --no blurry ...)",
    ),
]
Negative = Annotated[str, Field(max_length=MAX_NEGATIVE_CHARS, description="What to avoid")]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Aspect = Annotated[str, OneOf(tuple(ASPECTS), "aspect")]
Sampler = Annotated[str, OneOf(tuple(SAMPLERS), "sampler")]
Loras = Annotated[
    str, Field(min_length=1, max_length=400, description="LoRAs and weights: `name:0.8, other:0.5`")
]
ProjectName = Annotated[str, Field(min_length=1, max_length=100, description="Project to file it under")]
WebhookUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2000,
        description="https URL called with a signed JSON body when the generation ends",
    ),
]
Snowflake = Annotated[
    str, Field(pattern=r"^[0-9]{1,20}$", description="A Discord project thread of yours to show it in")
]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Index = Annotated[int, Field(ge=0, le=MAX_BATCH - 1, description="The image's place in its batch, from 0")]
Strength = Annotated[float, Field(gt=0, le=1, description="How far from the image to go: above 0, at most 1")]
Box = Annotated[
    str,
    Field(
        min_length=3,
        max_length=60,
        description="The area to repaint, `x,y,w,h` in percent of the image, e.g. `25,25,50,50`",
    ),
]
GradePreset = Annotated[str, OneOf(tuple(GRADE_PRESETS), "preset")]
ExportPresetName = Annotated[str, OneOf(tuple(EXPORT_PRESETS), "preset")]


class GenerationOptions(Strict):
    """What a generation may set besides its prompt; unset fields follow your /settings defaults."""

    negative: Negative | None = None
    model: Name | None = None
    aspect: Aspect | None = None
    batch: Annotated[int, Field(ge=1, le=MAX_BATCH)] | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    guidance: Annotated[float, Field(ge=0, le=MAX_GUIDANCE)] | None = None
    sampler: Sampler | None = None
    style: Name | None = None
    loras: Loras | None = None
    private: bool | None = None
    project: ProjectName = "api"
    webhook_url: WebhookUrl | None = None
    discord_thread_id: Snowflake | None = None


class GenerationIn(GenerationOptions):
    prompt: Prompt
    confirm: bool = Field(
        default=False, description="Start a `{a, b}` permutation set above the confirmation threshold"
    )


class RemixForm(GenerationOptions):
    """multipart/form-data: an image to start from, and the prompt that changes it."""

    image: UploadFile
    prompt: Prompt
    strength: Strength | None = None


class ControlForm(GenerationOptions):
    """multipart/form-data: an image whose structure the result follows (ControlNet), and the prompt.
    The studio checks the mode is configured for the model's family and the ranges, in one sentence."""

    image: UploadFile
    prompt: Prompt
    control_mode: Annotated[
        str, Field(max_length=20, description="canny, depth, pose, scribble or lineart")
    ] = "canny"
    control_strength: float | None = Field(default=None, description="Conditioning scale, 0-2 (default 1)")
    control_start: float | None = Field(default=None, description="Fraction of the steps where it begins")
    control_end: float | None = Field(default=None, description="Fraction of the steps where it ends")


Cell = (
    Annotated[str, Field(max_length=1000)]
    | Annotated[int, Field(ge=-(2**53), le=2**53)]
    | Annotated[float, Field(ge=-1e15, le=1e15)]
    | bool
    | None
)
Row = Annotated[dict[Annotated[str, Field(min_length=1, max_length=64)], Cell], Field(max_length=100)]


class BatchIn(GenerationOptions):
    """One generation per row: `template` filled with the row's values (`{name}`; `{{` is a brace)."""

    template: Prompt
    rows: Annotated[list[Row], Field(min_length=1, max_length=MAX_BATCH_ROWS)] | None = None
    csv: (
        Annotated[
            str, Field(min_length=1, max_length=MAX_CSV_CHARS, description="CSV text with a header row")
        ]
        | None
    ) = None


# Finishing: the source is an Atelier image (JSON) or an upload (multipart/form-data).


class ImageSource(Strict):
    generation_id: Id
    index: Index = 0


class UpscaleFields(Strict):
    factor: Literal[2, 4] = 2


class UpscaleJson(UpscaleFields, ImageSource):
    pass


def _form_int(value: Any) -> Any:
    """A form field is text: "2" must meet Literal[2, 4], which (unlike int) never coerces."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


class UpscaleUpload(UpscaleFields):
    factor: Annotated[Literal[2, 4], BeforeValidator(_form_int)] = 2
    image: UploadFile


class InpaintFields(Strict):
    prompt: Prompt
    box: Box | None = None
    negative: Negative | None = None
    model: Name | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    guidance: Annotated[float, Field(ge=0, le=MAX_GUIDANCE)] | None = None
    strength: Strength | None = None
    private: bool | None = None
    project: ProjectName = "api"
    webhook_url: WebhookUrl | None = None
    discord_thread_id: Snowflake | None = None


class InpaintJson(InpaintFields, ImageSource):
    box: Box  # an Atelier image has no mask of yours: say where, as a box


class InpaintUpload(InpaintFields):
    image: UploadFile
    mask: UploadFile | None = None  # white = repaint; or give `box`


def _slider(name: str) -> Any:
    slider = GRADE_SLIDERS[name]
    return Field(default=0.0, ge=slider.low, le=slider.high, description=slider.meaning)


class GradeFields(Strict):
    """A grade's fields: one per slider of studio.finishing.Grade (a unit test holds them equal)."""

    preset: GradePreset | None = None
    exposure: float = _slider("exposure")
    contrast: float = _slider("contrast")
    saturation: float = _slider("saturation")
    temperature: float = _slider("temperature")
    tint: float = _slider("tint")
    grain: float = _slider("grain")
    vignette: float = _slider("vignette")
    sharpen: float = _slider("sharpen")
    blur: float = _slider("blur")
    seed: Annotated[int, Field(ge=0, le=MAX_SEED, description="The grain's noise seed")] = 0
    apply: bool = Field(default=True, description="Make the graded image (else only the before/after)")


class GradeJson(GradeFields, ImageSource):
    pass


class GradeUpload(GradeFields):
    image: UploadFile


class ExportFields(Strict):
    preset: ExportPresetName
    format: ExportFormat | None = None
    focus_x: Annotated[float, Field(ge=0, le=100)] | None = None
    focus_y: Annotated[float, Field(ge=0, le=100)] | None = None
    max_kb: Annotated[int, Field(ge=8, le=50 * 1024)] | None = None
    keep_metadata: bool = True


class ExportJson(ExportFields, ImageSource):
    pass


class ExportUpload(ExportFields):
    image: UploadFile


# Responses


class LoraOut(BaseModel):
    name: str
    weight: float


class ControlOut(BaseModel):
    """ControlNet: the mode, its scale and steps, the source image's and the derived map's sha256."""

    mode: str
    image: str
    strength: float
    start: float
    end: float
    map: str | None


class RecipeOut(BaseModel):
    """Everything that reproduces the image(s)."""

    model: str
    family: str
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    batch: int
    aspect: str | None
    sampler: str
    loras: list[LoraOut]
    init_image: str | None
    strength: float | None
    mask: str | None
    parent_image: str | None
    style: str | None
    control: ControlOut | None = None


class ImageOut(BaseModel):
    index: int
    seed: int
    width: int
    height: int
    public: bool
    flagged: bool = Field(
        description="The server's image safety check flagged it: its file is served to its owner only"
    )
    url: str
    recipe_url: str


class WebhookOut(BaseModel):
    status: Literal["none", "pending", "delivered", "failed"]
    attempts: int
    error: str | None


GenerationStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class GenerationOut(BaseModel):
    id: str
    status: GenerationStatus
    error: str | None
    project_id: str
    private: bool
    attempts: int
    queue_position: int | None = Field(description="Jobs ahead of this one while it waits")
    eta_seconds: float | None = Field(
        description="While it waits: about how many seconds until it is done (jobs ahead x the recent "
        "median run time / the live workers' slots); null when there is no estimate"
    )
    created_at: float
    started_at: float | None
    finished_at: float | None
    prompt_text: str = Field(description="The recipe as prompt text with flags (paste it into /imagine)")
    recipe: RecipeOut
    images: list[ImageOut]
    webhook: WebhookOut | None
    url: str


class GenerationList(BaseModel):
    generations: list[GenerationOut]


class BatchItemOut(BaseModel):
    row: int = Field(description="The row it was made from, from 1")
    id: str
    status: GenerationStatus
    url: str


class BatchOut(BaseModel):
    count: int
    generations: list[BatchItemOut]


class ImageRecipeOut(BaseModel):
    generation_id: str
    index: int
    image_id: str
    seed: int
    width: int
    height: int
    public: bool
    mine: bool
    parent_image_id: str | None
    created_at: float
    prompt_text: str
    parameters: str = Field(description="The A1111 `parameters` text (PNG Info, Civitai)")
    recipe: RecipeOut
    url: str


class FinishOut(BaseModel):
    id: str
    kind: Literal["upscale", "grade", "export"]
    ready: bool = Field(description="False for a grade that was only previewed")
    source_image_id: str | None
    params: dict[str, Any]
    method: str | None
    width: int | None
    height: int | None
    content_type: str
    filename: str | None = None
    quality: int | None = None
    created_at: float
    applied_at: float | None
    file_url: str
    preview_url: str | None


class TrainingOut(BaseModel):
    id: str
    name: str
    version: int
    trigger: str
    base_model: str
    family: str
    visibility: Literal["private", "server"]
    status: Literal["queued", "running", "retrying", "done", "failed", "cancelled"]
    step: int
    steps: int
    loss: float | None
    losses: list[float]
    attempts: int
    error: str | None
    image_count: int
    model_ready: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    warnings: list[str] = []
    url: str


class BaseModelOut(BaseModel):
    id: str
    family: str
    source_kind: Literal["folder", "file", "hub"]
    description: str
    tags: list[str]
    steps: int
    guidance: float
    size: int
    sampler: str
    negative_prompt: bool  # False: a guidance-distilled Flux model without true CFG


class LoraModelOut(BaseModel):
    name: str
    version: int
    trigger: str
    base_model: str
    family: str
    visibility: Literal["private", "server"]
    mine: bool
    created_at: float


class ModelsOut(BaseModel):
    base: list[BaseModelOut]
    loras: list[LoraModelOut]


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    detail: str | list[ValidationIssue] = Field(
        description="A sentence saying what to change (a list for malformed fields)"
    )
    field: str | None = None


class TrainingForm(Strict):
    """multipart/form-data: the images of the subject (3 or more) and the run's settings."""

    images: Annotated[list[UploadFile], Field(min_length=1, max_length=1000)]
    captions: list[Annotated[str, Field(max_length=300)]] | None = Field(
        default=None, max_length=1000, description="One per image, in order: what else is in it"
    )
    name: Annotated[str, Field(min_length=1, max_length=64)]
    trigger: Annotated[str, Field(min_length=1, max_length=64)]
    steps: Annotated[int, Field(ge=10, le=100_000)] | None = None
    rank: Annotated[int, Field(ge=1, le=128)] | None = None
    learning_rate: Annotated[float, Field(gt=0, le=0.1)] | None = None
    resolution: Annotated[int, Field(ge=64, le=2048)] | None = None
    base_model: Name | None = None
    text_encoder: bool | None = None
    visibility: Literal["private", "server"] = "private"
    new_version: bool = False
