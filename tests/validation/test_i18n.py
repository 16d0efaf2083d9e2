"""Message catalogs: the same keys in it/zh/en, every code validation emits, every template renders."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from fabzone import i18n
from fabzone.validation import CODES, Reason

VALIDATION = Path(__file__).resolve().parents[2] / "fabzone" / "validation"
SAMPLE_PARAMS = {
    "line": 12,
    "text": "solid cube",
    "limit_mb": 100.0,
    "kib": 1024,
    "kind": "printer",
    "machine_kind": "laser",
    "length": 120,
    "limit": 83,
    "command": "M500",
    "value": 300.0,
    "axis": "X",
    "min": 0.0,
    "max": 250.0,
    "side": "max",
    "extreme": 301.5,
    "extreme_line": 40,
    "code": "gcode.not_gcode",
    "count": 3,
    "profile": "bambu-x1",
    "known": "prusa-mk3s, creality-ender3",
    "job": "ABC234",
    "state": "queued",
    "current": "queued",
    "target": "running",
    "machine": "mk3s-1",
    "reason": "laser mode is off ($32=0)",
}
API = VALIDATION.parent / "api"


def test_catalogs_have_the_same_keys() -> None:
    keys = {lang: set(i18n.catalog(lang)) for lang in i18n.LANGUAGES}
    assert keys["it"] == keys["en"] == keys["zh"]


def code_literals(folder: Path, pattern: str) -> set[str]:
    """Every string literal in the folder's modules that looks like a message code."""
    found: set[str] = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(pattern, node.value)
            ):
                found.add(node.value)
    return found


def test_every_emitted_code_is_in_the_catalogs() -> None:
    # Every "gcode.*"/"validation.*" string literal in the validation sources is a code.
    assert code_literals(VALIDATION, r"(gcode|validation)\.[a-z_0-9]+") <= CODES
    for lang in i18n.LANGUAGES:
        assert set(i18n.catalog(lang)) >= CODES, lang


def test_every_api_error_code_is_in_the_catalogs() -> None:
    # api_error(status, "code", ...) and UploadError("code", ...): the pages translate these codes.
    # And the codes stored with a job (crud/): the ticket page shows them to the maker.
    found = code_literals(API, r"(job|machine|upload|auth)\.[a-z_]+") | code_literals(
        API.parent / "crud", r"job\.[a-z_]+"
    )
    # job_finished stores f"job.{outcome}" for these two.
    found |= {"job.failed", "job.interrupted"}
    assert {"job.rejected", "job.declined", "upload.too_large", "machine.offline"} <= found
    for lang in i18n.LANGUAGES:
        assert found <= set(i18n.catalog(lang)), (lang, found - set(i18n.catalog(lang)))


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_template_renders(lang: str) -> None:
    for code, template in i18n.catalog(lang).items():
        names = set(re.findall(r"{(\w+)}", template))
        assert names <= set(SAMPLE_PARAMS), (lang, code, names - set(SAMPLE_PARAMS))
        text = i18n.message(code, lang, SAMPLE_PARAMS)
        assert "{" not in text and text.strip(), (lang, code)


def test_reason_message_in_three_languages() -> None:
    reason = Reason(
        "gcode.out_of_volume",
        12,
        {"axis": "X", "value": 300.0, "min": 0.0, "max": 250.0, "extreme": 300.0, "extreme_line": 12},
    )
    assert "X=300 mm" in reason.message("en") and "line 12" in reason.message("en")
    assert "riga 12" in reason.message("it-IT")
    assert "第 12 行" in reason.message("zh-Hans-CN")
    assert reason.message("fr") == reason.message("en")
    assert reason.to_dict("it")["message"] == reason.message("it")


def test_language_pick_and_unknown_code() -> None:
    assert i18n.pick_language("zh_CN") == "zh"
    assert i18n.pick_language(None) == "en"
    assert i18n.message("no.such.code", "it") == "no.such.code"
