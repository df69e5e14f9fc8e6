"""Members' languages: texts that are rendered in a Discord locale only when they are shown.

The core never knows who reads a message, so it builds `Text` values (a gettext msgid, the
English text, and its parameters) with `tr` / `trn`; the Discord layer renders them with the
member's `interaction.locale` (or the server's `guild_locale`) through `render`. Catalogs are
gettext `.po` files in `bot/locales/<locale>/LC_MESSAGES/messages.po`, read with Babel when first
needed (no compile step); a string without a translation falls back to English.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

_ENGLISH = gettext.NullTranslations()
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
# Discord locale -> catalog directory. Names stay English; these are the translated languages.
CATALOGS = {
    "zh-CN": "zh_CN",
    "zh-TW": "zh_TW",
    "ja": "ja",
    "ko": "ko",
    "es-ES": "es_ES",
    "pt-BR": "pt_BR",
    "fr": "fr",
    "de": "de",
}
# Discord locales without a catalog of their own that read another one well.
SIMILAR = {"es-419": "es-ES"}


class Text(str):
    """A member-facing text: as a `str` it is the English; `render(locale)` translates it.

    Being a `str`, a `Text` goes wherever English text went before (logs, the job row, tests);
    the Discord layer calls `render` with the reader's locale.
    """

    msgid: str
    params: dict[str, Any]
    plural: str | None
    number: int  # picks the plural form (`str.count` is taken)
    literal: bool  # a layout of other texts (`join`), not itself a catalog entry

    def __new__(
        cls, msgid: str, params: dict[str, Any] | None = None, plural: str | None = None, count: int = 0,
        *, literal: bool = False,
    ) -> Text:
        params = dict(params or {})
        english = _format(_ENGLISH, msgid, params, plural, count, None)
        text = super().__new__(cls, english)
        text.msgid, text.params, text.plural, text.number, text.literal = msgid, params, plural, count, literal
        return text

    def render(self, locale: str | None) -> str:
        translations = catalog(None if self.literal else locale)
        return _format(translations, self.msgid, self.params, self.plural, self.number, locale)

    def with_params(self, **params: Any) -> Text:
        return Text(self.msgid, {**self.params, **params}, self.plural, self.number, literal=self.literal)


def _format(
    translations: gettext.NullTranslations, msgid: str, params: dict[str, Any], plural: str | None, count: int,
    locale: str | None,
) -> str:
    values = {key: render(value, locale) for key, value in params.items()}
    template = translations.gettext(msgid) if plural is None else translations.ngettext(msgid, plural, count)
    try:
        return template.format(count=count, **values) if plural is not None else template.format(**values)
    except (KeyError, IndexError, ValueError):
        # A hand-edited catalog with a broken placeholder (tests/test_catalogs.py catches it in CI):
        # the member gets the English rather than an error.
        english = msgid if plural is None or count == 1 else plural
        return english.format(count=count, **values) if plural is not None else english.format(**values)


def tr(msgid: str, **params: Any) -> Text:
    """Mark `msgid` (English, with `{name}` placeholders) for translation."""
    return Text(msgid, params)


def trn(singular: str, plural: str, count: int, **params: Any) -> Text:
    """A text whose wording depends on `count` (available to both forms as `{count}`)."""
    return Text(singular, params, plural, count)


def render(value: Any, locale: str | None) -> Any:
    """A `Text` in `locale`; anything else (a number, a mention, a prompt) unchanged."""
    return value.render(locale) if isinstance(value, Text) else value


def join(parts: list[Text | str], separator: str = " ") -> Text:
    """Several texts shown together (each translated on its own)."""
    template = separator.replace("{", "{{").replace("}", "}}").join(f"{{p{index}}}" for index in range(len(parts)))
    return Text(template, {f"p{index}": part for index, part in enumerate(parts)}, literal=True)


def catalog_dir(locale: str | None) -> str | None:
    """The catalog a Discord locale reads (`zh-CN` -> `zh_CN`), or None for English."""
    if locale is None:
        return None
    locale = SIMILAR.get(locale, locale)
    return CATALOGS.get(locale)


@functools.cache
def _load(directory: str) -> tuple[gettext.GNUTranslations, frozenset[str]]:
    """The catalog of `directory`, and the msgids it translates."""
    path = LOCALES_DIR / directory / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        messages = read_po(po, locale=directory)
    compiled = io.BytesIO()
    write_mo(compiled, messages)  # fuzzy and empty entries are left out: English is shown for them
    compiled.seek(0)
    known = frozenset(
        message.id if isinstance(message.id, str) else message.id[0]
        for message in messages
        if message.id and not message.fuzzy and all(forms(message.string))
    )
    return gettext.GNUTranslations(compiled), known


def forms(string: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """A catalog entry's translation as a tuple of its plural forms ("" where untranslated)."""
    if string is None:
        return ("",)
    return (string,) if isinstance(string, str) else tuple(string)


def catalog(locale: str | None) -> gettext.NullTranslations:
    directory = catalog_dir(locale)
    return _ENGLISH if directory is None else _load(directory)[0]


def translation(locale: str | None, msgid: str) -> str | None:
    """`msgid` in `locale` when the catalog translates it (even to the same words), else None."""
    directory = catalog_dir(locale)
    if directory is None:
        return None
    translations, known = _load(directory)
    return translations.gettext(msgid) if msgid in known else None
