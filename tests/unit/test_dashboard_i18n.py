"""Every dashboard label exists in Japanese and English, and every label a template names is in the table."""

from __future__ import annotations

import re

from starlette.requests import Request

from gateway.web import i18n
from gateway.web.dashboard.web import NAV, TEMPLATES


def test_both_languages_have_the_same_keys_and_no_empty_label() -> None:
    assert set(i18n.LABELS["ja"]) == set(i18n.LABELS["en"])
    for lang, labels in i18n.LABELS.items():
        assert all(text.strip() for text in labels.values()), lang


def test_every_label_the_templates_and_navigation_use_is_translated() -> None:
    used = {f"nav.{key}" for key, _, _ in NAV} | {f"lang.{code}" for code in i18n.LANGUAGES}
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\(['"]([\w.]+)['"]\)""", template.read_text(encoding="utf-8")))
    used |= {f"role.{r}" for r in ("viewer", "operator", "admin")}
    missing = sorted(k for k in used if k not in i18n.LABELS["ja"])
    assert missing == []


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw})


def test_language_from_cookie_then_accept_language_else_japanese() -> None:
    assert i18n.language(_request({})) == "ja"
    assert i18n.language(_request({"Accept-Language": "en-US,en;q=0.9"})) == "en"
    assert i18n.language(_request({"Accept-Language": "fr-FR,ja;q=0.8"})) == "ja"
    assert i18n.language(_request({"Accept-Language": "en", "Cookie": "gw_lang=ja"})) == "ja"
    assert i18n.language(_request({"Cookie": "gw_lang=xx"})) == "ja"
    assert i18n.translate("en", "nav.deals") == "Deals"
    assert i18n.translate("ja", "nav.deals") == "取引"
