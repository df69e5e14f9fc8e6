"""Texts the core builds are English as strings and translated only when the Discord layer renders them."""

from __future__ import annotations

import gettext

from bot.core import i18n
from bot.core.i18n import Text, catalog_dir, join, tr, trn
from bot.core.images.sizes import InvalidSize, parse_size
from bot.core.quota.periods import Period


def test_a_text_is_its_english_until_rendered():
    text = tr("⏳ Queued — position {position} in line.", position=3)
    assert isinstance(text, str) and text == "⏳ Queued — position 3 in line."
    assert text.render(None) == text.render("en-US") == text
    assert text.render("zh-CN") == "⏳ 排队中——你排在第 3 位。"


def test_nested_texts_are_rendered_in_the_same_language():
    text = tr("{count} image left {period}", count=1, period=Period.WEEKLY.this)
    images = trn("{count} image left {period}", "{count} images left {period}", 4, period=Period.WEEKLY.this)
    assert images == "4 images left this week"
    assert images.render("zh-CN") == "本周还剩 4 张图片"
    assert images.render("de") == "4 Bilder übrig diese Woche"
    assert isinstance(text, Text)


def test_plural_forms_follow_the_language():
    one, many = trn("{count} image", "{count} images", 1), trn("{count} image", "{count} images", 2)
    assert (one, many) == ("1 image", "2 images")
    assert (one.render("fr"), many.render("fr")) == ("1 image", "2 images")
    assert (one.render("es-ES"), many.render("es-ES")) == ("1 imagen", "2 imágenes")
    assert many.render("ja") == "2 枚の画像"


def test_a_string_without_a_translation_falls_back_to_english():
    untranslated = tr("none given")  # the German catalog has no translation for it
    assert untranslated.render("de") == "none given"
    assert tr("a text no catalog knows").render("zh-CN") == "a text no catalog knows"
    assert tr("Edit image").render("it") == "Edit image"  # a language without a catalog


def test_locales_without_a_catalog_of_their_own():
    assert catalog_dir("zh-CN") == "zh_CN" and catalog_dir("es-419") == "es_ES"
    assert catalog_dir("en-US") is None and catalog_dir(None) is None


def test_an_error_from_the_core_is_localized_whole():
    try:
        parse_size("800x800")
    except InvalidSize as error:
        refused = error
    assert refused.user_message.startswith("800x800 is too small (640,000 pixels).")
    assert refused.localized("zh-CN").startswith("800x800 太小了（640,000 像素）。 请使用 1K、2K 或 4K")
    assert join([tr("Size"), "{literal}"]).render("zh-CN") == "尺寸 {literal}"


def test_a_translation_with_a_broken_placeholder_shows_the_english(monkeypatch):
    class Broken(gettext.NullTranslations):
        def gettext(self, message: str) -> str:
            return "第 {numbr} 张"  # a typo in a hand-edited catalog

    monkeypatch.setattr(i18n, "catalog", lambda locale: Broken())
    assert tr("Edit image {number}", number=2).render("zh-CN") == "Edit image 2"
