"""Command, option and choice texts in the member's language, through discord.py's `Translator`.

Only descriptions and choice names are translated: command, option and context-menu *names*
stay English (so docs, habits and screenshots carry over). The strings are the English texts
of the decorators and docstrings, looked up in the same gettext catalogs as every message.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.core.i18n import translation

TRANSLATED = frozenset({
    app_commands.TranslationContextLocation.command_description,
    app_commands.TranslationContextLocation.group_description,
    app_commands.TranslationContextLocation.parameter_description,
    app_commands.TranslationContextLocation.choice_name,
})


class CatalogTranslator(app_commands.Translator):
    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        if context.location not in TRANSLATED:
            return None
        # No translation: None leaves the locale out, so Discord shows the English.
        return translation(str(locale), string.message)
