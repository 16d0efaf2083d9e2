"""The pages' UI catalogs (web/i18n): same keys in it/zh/en, and every key the pages use exists.

No browser needed: this reads the files, so it runs even where Chromium is missing."""

from __future__ import annotations

import json
import re

import pytest

from fabzone.i18n import catalog as api_catalog
from fabzone.states import JobState, MachineState
from tests.support import ROOT

WEB = ROOT / "web"
LANGS = ("en", "it", "zh")


def ui(lang: str) -> dict[str, str]:
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def used_keys() -> set[str]:
    keys: set[str] = set()
    for page in WEB.glob("*.html"):
        keys |= set(re.findall(r'data-i18n(?:-placeholder|-title)?="([\w.]+)"', page.read_text()))
    for module in (WEB / "js").glob("*.js"):
        text = module.read_text()
        keys |= set(re.findall(r'\bt\(\s*"([\w.]+)"', text))
        # Ternaries: t(cond ? "a" : "b").
        for a, b in re.findall(r'\bt\([^()"]*\?\s*"([\w.]+)"\s*:\s*"([\w.]+)"', text):
            keys |= {a, b}
        # Buttons are labelled `tech.<action>`.
        keys |= {f"tech.{a}" for a in re.findall(r'\bbtn\("(\w+)"', text)}
    keys |= {f"state.job.{s.value}" for s in JobState}
    keys |= {f"state.machine.{s.value}" for s in MachineState}
    keys |= {"kind.printer", "kind.laser", "temp.hotend", "temp.bed"}
    return keys


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def test_three_catalogs_have_the_same_keys_and_placeholders() -> None:
    en = ui("en")
    for lang in LANGS[1:]:
        other = ui(lang)
        assert set(other) == set(en), f"{lang}: missing {set(en) - set(other)}, extra {set(other) - set(en)}"
        for key, text in other.items():
            assert text.strip(), f"{lang}:{key} is empty"
            assert placeholders(text) == placeholders(en[key]), f"{lang}:{key} names other parameters"


@pytest.mark.parametrize("lang", LANGS)
def test_every_key_used_by_the_pages_exists(lang: str) -> None:
    missing = used_keys() - set(ui(lang))
    assert not missing, f"{lang}: keys used in web/ but not in web/i18n/{lang}.json: {sorted(missing)}"


def test_hints_name_real_api_codes() -> None:
    codes = set(api_catalog("en"))
    hints = {k.removeprefix("hint.") for k in ui("en") if k.startswith("hint.")}
    assert hints <= codes, f"hints for codes the API does not have: {hints - codes}"


def test_chinese_and_italian_are_translated() -> None:
    en, it, zh = ui("en"), ui("it"), ui("zh")
    untranslated = [
        k
        for k, v in zh.items()
        if re.search(r"[a-z]{4}", en[k])
        and not k.startswith("time.")
        and not re.search(r"[\u4e00-\u9fff]", v)
    ]
    assert not untranslated, f"Chinese strings without Chinese characters: {untranslated}"
    same = [k for k in en if it[k] == en[k] and re.search(r"[a-z]{5}", en[k])]
    assert len(same) <= 3, f"Italian strings left in English: {same}"
