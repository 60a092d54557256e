"""config/atelier.example.toml lists every setting, with its default, and nothing else."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from studio.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "atelier.example.toml"
# Settings without a default value worth writing down are shown commented out: `# key = ...`.
COMMENTED = re.compile(r"^# ([a-z0-9_]+) = ", re.MULTILINE)


def test_the_example_config_lists_every_setting_with_its_default() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    listed = tomllib.loads(text)
    commented = set(COMMENTED.findall(text))
    fields = Settings.model_fields
    missing = set(fields) - set(listed) - commented
    assert not missing, f"add these settings to {EXAMPLE.name}: {sorted(missing)}"
    unknown = (set(listed) | commented) - set(fields)
    assert not unknown, f"{EXAMPLE.name} lists settings that do not exist: {sorted(unknown)}"
    for key, value in listed.items():
        default = fields[key].default
        shown = str(default) if isinstance(default, Path) else default
        assert value == shown, f"{key} = {value!r} in {EXAMPLE.name}, but the default is {shown!r}"
    for key in commented:
        assert fields[key].default is None, f"{key} has a default: list it uncommented"
