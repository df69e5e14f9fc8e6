"""The gettext catalogs: every key the code uses is in every catalog, and translations keep the placeholders."""

from __future__ import annotations

import string

import pytest
from babel.messages.pofile import read_po

from bot.core.i18n import CATALOGS, DOMAIN, LOCALES_DIR, forms
from bot.locales.keys import catalog_keys, command_keys, source_keys

KEYS = catalog_keys()
COMMAND_TEXTS = {key.msgid for key in command_keys()}


def placeholders(text: str) -> set[str]:
    return {field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def read(directory: str):
    with (LOCALES_DIR / directory / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        return read_po(po, locale=directory)


def test_keys_are_found_in_the_source_and_the_commands():
    sources = {key.msgid for key in source_keys()}
    assert "That size isn't supported. {rules}" in sources  # bot/core
    assert "I'm already working on that — one click is enough. The result will appear here." in sources  # cogs
    assert "Generate images with Seedream 4.0." in COMMAND_TEXTS  # a docstring
    assert "What to draw" in COMMAND_TEXTS  # an option description
    assert {"daily", "weekly", "monthly"} <= COMMAND_TEXTS  # choice names
    assert "imagine" not in COMMAND_TEXTS and "Edit with Seedream" not in COMMAND_TEXTS  # names stay English


@pytest.mark.parametrize("directory", sorted(CATALOGS.values()))
def test_no_catalog_lacks_a_key_the_code_uses(directory):
    catalog = read(directory)
    missing = [msgid for msgid, key in KEYS.items()
               if catalog.get(msgid) is None or (key.plural and catalog.get(msgid).id[1] != key.plural)]
    assert missing == [], f"run `python -m bot.locales`; {directory} lacks {missing}"


@pytest.mark.parametrize("directory", sorted(CATALOGS.values()))
def test_translations_keep_the_placeholders(directory):
    wrong = []
    for message in read(directory):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = set().union(*(placeholders(text) for text in ids))
        for text in forms(message.string):
            if not text:
                continue
            found = placeholders(text)
            # A plural form may leave out {count} ("1 image" -> "an image"), never any other placeholder.
            if found - expected or (expected - {"count"}) - found or (len(ids) == 1 and found != expected):
                wrong.append((message.id, text))
    assert wrong == []


@pytest.mark.parametrize("directory", sorted(CATALOGS.values()))
def test_every_command_description_and_choice_is_translated(directory):
    catalog = read(directory)
    untranslated = [text for text in COMMAND_TEXTS if not all(forms(catalog.get(text).string))]
    assert untranslated == []


def test_simplified_chinese_is_complete():
    catalog = read("zh_CN")
    untranslated = [msgid for msgid in KEYS if not all(forms(catalog.get(msgid).string))]
    assert untranslated == []


@pytest.mark.parametrize("directory", sorted(CATALOGS.values()))
def test_command_texts_fit_discords_100_characters(directory):
    catalog = read(directory)
    too_long = [text for msgid in COMMAND_TEXTS for text in forms(catalog.get(msgid).string) if len(text) > 100]
    assert too_long == []
