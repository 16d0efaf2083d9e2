"""Message catalogs: a stable code plus parameters rendered in Italian, Chinese or English."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "it", "zh")
DEFAULT_LANGUAGE = "en"


@cache
def catalog(lang: str) -> dict[str, str]:
    """The flat `code -> template` catalog of one language (fabzone/locales/<lang>.json)."""
    if lang not in LANGUAGES:
        raise KeyError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    text = resources.files("fabzone").joinpath("locales", f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"locales/{lang}.json must be a flat JSON object of strings")
    return data


def pick_language(lang: str | None) -> str:
    """`it-IT` -> `it`, `zh-Hans-CN` -> `zh`, anything unknown -> English."""
    if not lang:
        return DEFAULT_LANGUAGE
    base = lang.replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def _show(value: Any) -> str:
    # 300.0 -> "300", 0.12345678 -> "0.123": makers read millimetres, not float reprs.
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        text = f"{value:.3f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if isinstance(value, (list, tuple)):
        return ", ".join(_show(v) for v in value)
    return str(value)


# Parameters whose value is itself a word to translate: `kind="laser"` reads "taglio laser" in Italian.
_TRANSLATED_PARAMS = {"kind": "kind", "machine_kind": "kind"}
# State names: a job's in `job.*` messages, a machine's in `machine.*` ("è in coda", not "è queued").
_STATE_PARAMS = frozenset({"state", "current", "target"})


def _translated(name: str, value: Any, lang: str, code: str = "") -> Any:
    prefix = _TRANSLATED_PARAMS.get(name)
    if prefix is None and name in _STATE_PARAMS:
        owner = code.partition(".")[0]
        prefix = f"state.{owner}" if owner in ("job", "machine") else None
    if prefix is None or not isinstance(value, str):
        return value
    return (
        catalog(lang).get(f"{prefix}.{value}") or catalog(DEFAULT_LANGUAGE).get(f"{prefix}.{value}") or value
    )


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        # A template naming a parameter the code did not pass still renders (as `{key}`).
        return "{" + key + "}"


def message(code: str, lang: str | None = DEFAULT_LANGUAGE, params: Mapping[str, Any] | None = None) -> str:
    """The text for `code` in `lang` (falling back to English, then to the code itself)."""
    chosen = pick_language(lang)
    template = catalog(chosen).get(code) or catalog(DEFAULT_LANGUAGE).get(code)
    if template is None:
        return code
    shown = _Params({k: _show(_translated(k, v, chosen, code)) for k, v in (params or {}).items()})
    return template.format_map(shown)
