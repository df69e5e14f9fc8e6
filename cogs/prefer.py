"""/prefer: a member's own defaults for size, count and watermark, kept across servers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core.errors import UserFacingError
from bot.core.i18n import Text, join, tr
from bot.core.images.sizes import parse_size
from bot.core.jobs.preferences import MemberPreferences
from bot.discord_ui.cog import BotCog
from bot.discord_ui.locales import member_locale
from bot.discord_ui.replies import NO_PINGS
from bot.discord_ui.slash_jobs import SIZE_HELP, size_autocomplete

if TYPE_CHECKING:
    from bot.app import SeedreamBot


class Prefer(BotCog):
    @app_commands.command(name="prefer")
    @app_commands.autocomplete(size=size_autocomplete)
    @app_commands.describe(
        size=SIZE_HELP,
        count="How many images you want when you don't say, 1–15",
        watermark="Whether you want the small 'AI generated' mark when you don't say",
        clear="True: forget your defaults (the server's apply again)",
    )
    async def prefer(
        self,
        interaction: discord.Interaction[SeedreamBot],
        size: str | None = None,
        count: app_commands.Range[int, 1, 15] | None = None,
        watermark: bool | None = None,
        clear: bool = False,
    ) -> None:
        """Your own defaults for size, count and watermark (in every server); no options shows them."""
        store = self.bot.preferences
        user_id = interaction.user.id
        if clear:
            if (size, count, watermark) != (None, None, None):
                raise UserFacingError(tr("Use `clear:True` on its own: it forgets all your defaults. "
                                         "Nothing was changed."))
            await store.clear(user_id)
            heading = tr("🧹 Your defaults are cleared.")
            preferences = MemberPreferences()
        elif (size, count, watermark) == (None, None, None):
            heading = tr("Your defaults, in every server:")
            preferences = await store.get(user_id)
        else:
            parsed = parse_size(size) if size is not None else None
            preferences = await store.update(user_id, size=parsed, count=count, watermark=watermark)
            heading = tr("✅ Saved. Your defaults, in every server:")
        await interaction.response.send_message(self._describe(heading, preferences).render(member_locale(interaction)),
                                                ephemeral=True,
                                                allowed_mentions=NO_PINGS)

    def _describe(self, heading: Text, preferences: MemberPreferences) -> Text:
        settings = self.bot.settings
        on, off = tr("on"), tr("off")
        size: Text | str = (f"**{preferences.size}**" if preferences.size
                            else tr("the server's ({value})", value=settings.default_size))
        count: Text | str = (f"**{preferences.count}**" if preferences.count
                             else tr("the server's ({value})", value="1"))
        if preferences.watermark is None:
            watermark = tr("the server's ({value})", value=on if settings.default_watermark else off)
        else:
            watermark = join(["**", on if preferences.watermark else off, "**"], separator="")
        return tr("{heading}\n• size: {size}\n• count: {count}\n• watermark: {watermark}\n"
                  "An option you give a command, or a flag in the prompt (`--4k`, `--n 4`, …), still wins.",
                  heading=heading, size=size, count=count, watermark=watermark)


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Prefer(bot))
