"""`full_text.allow_addresses`: ranges article links may reach, checked with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = "feeds:\n  - name: isw\n    url: https://example.org/isw.xml\n"


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "alertbot.yaml"
    path.write_text(MINIMAL + text, encoding="utf-8")
    return load_settings(path, {})


def test_ranges_and_single_addresses_are_read(tmp_path: Path) -> None:
    settings = load(
        tmp_path, 'full_text:\n  allow_addresses: [10.0.0.0/8, 192.168.1.20, "fd00::/8"]\n'
    )
    assert settings.allow_addresses == ("10.0.0.0/8", "192.168.1.20/32", "fd00::/8")


def test_nothing_is_allowed_by_default(tmp_path: Path) -> None:
    assert load(tmp_path, "").allow_addresses == ()
    assert load(tmp_path, "full_text:\n  allow_addresses: null\n").allow_addresses == ()


@pytest.mark.parametrize(
    "value, said",
    [
        ("[10.0.0.0/33]", ":5: full_text.allow_addresses: '10.0.0.0/33' is not an address range"),
        ("[intranet]", ":5: full_text.allow_addresses: 'intranet' is not an address range"),
        ("10.0.0.0/8", ":5: full_text.allow_addresses: expected a list of address ranges"),
    ],
)
def test_a_bad_range_names_file_and_line(tmp_path: Path, value: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"full_text:\n  allow_addresses: {value}\n")
    assert said in str(caught.value)


def test_the_example_configuration_is_valid() -> None:
    assert load_settings(ROOT / "alertbot.example.yaml", {}).allow_addresses == ()
