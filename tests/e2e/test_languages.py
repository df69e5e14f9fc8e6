"""Members' languages end to end: each answer follows the locale of the member it answers."""

from __future__ import annotations

from datetime import timedelta

from bot.config import instance_name
from bot.core.i18n import CATALOGS, SIMILAR
from bot.core.jobs.spec import StoredRequest
from bot.storage.database import Database
from bot.storage.jobs import JobStore
from tests.e2e.conftest import BotStarter, World
from tests.e2e.test_imagine import finished, image_messages
from tests.e2e.test_imagine_errors import FLAG_EPHEMERAL
from tests.e2e.test_quota import refusal
from tests.e2e.test_references import GREEN, RED, bot_replies
from tests.e2e.test_results import slow_first_post
from tests.fakes.fake_discord import FakeDiscord

LOCALES = set(CATALOGS) | set(SIMILAR)  # es-419 reads the es-ES catalog


async def imagine_as(discord: FakeDiscord, locale: str, **options):
    age = options.pop("age", timedelta(0))
    return await discord.slash("imagine", options, locale=locale, age=age)


async def test_a_bad_size_is_refused_privately_in_the_members_language(world: World):
    chinese = await (await imagine_as(world.discord, "zh-CN", prompt="一只猫", size="800x800")).wait_callback()
    english = await (await imagine_as(world.discord, "en-US", prompt="a cat", size="800x800")).wait_callback()

    assert chinese.type == 4 and chinese.data["flags"] & FLAG_EPHEMERAL
    assert chinese.data["content"].startswith("800x800 太小了（640,000 像素）。 请使用 1K、2K 或 4K")
    assert english.data["content"].startswith("800x800 is too small (640,000 pixels). Use 1K, 2K or 4K")
    assert world.relay.requests == []


async def test_a_quota_refusal_speaks_chinese_to_a_chinese_member(boot: BotStarter, fake_discord, relay):
    async with boot(quota_default_limit=0):
        refused = await refusal(await imagine_as(fake_discord, "zh-CN", prompt="一只猫"))

    assert refused.startswith("你已用完今天的 0 张图片。你的额度将于 <t:"), refused
    assert relay.requests == []


async def test_a_chinese_prompt_reaches_the_model_unchanged_and_the_result_speaks_chinese(world: World):
    prompt = "  水墨画风格的山水，远处有一座小桥 🌉 — with English words, too  "
    interaction = await imagine_as(world.discord, "zh-CN", prompt=prompt, count=2)
    summary = await finished(interaction)

    [request] = world.relay.requests
    assert request.body["prompt"] == prompt.strip()  # only the surrounding spaces go, as for every prompt
    assert summary.content.startswith("✅ 用时") and "2 张图片" in summary.content
    embed = image_messages(interaction)[0].embeds[0]
    assert {field["name"] for field in embed["fields"]} >= {"尺寸", "模型", "用时", "图片", "额度"}
    assert embed["footer"]["text"].startswith("任务 ")
    job = await world.bot.jobs.get(embed["footer"]["text"].removeprefix("任务 "))
    assert job is not None and job.request.prompt == prompt.strip() and job.request.locale == "zh-CN"


async def test_a_delivery_after_the_token_expired_keeps_the_members_language(world: World):
    await imagine_as(world.discord, "ja", prompt="a slow painting", age=timedelta(minutes=14, seconds=30))

    message = await world.discord.wait_for_message(world.discord.general, lambda m: bool(m.files) and not m.via_webhook)
    # A one-image job past its token: one reply in the channel, the summary with the image.
    assert message.content.startswith(f"<@{world.discord.alice.id}> ✅ ") and "秒で完了" in message.content
    fields = {field["name"] for field in message.embeds[0]["fields"]}
    assert {"サイズ", "モデル", "時間"} <= fields


async def test_each_member_gets_their_own_language_on_the_same_server(world: World):
    german = await (await imagine_as(world.discord, "de", prompt="   ")).wait_callback()
    korean = await (await imagine_as(world.discord, "ko", prompt="   ")).wait_callback()

    assert german.data["content"] == "Beschreibe das gewünschte Bild: der Prompt ist leer."
    assert korean.data["content"] == "원하는 이미지를 설명해 주세요. 프롬프트가 비어 있습니다."


def localized_options(options):
    for option in options or []:
        yield option
        yield from localized_options(option.get("options"))


async def test_synced_commands_carry_description_and_choice_localizations_but_english_names(world: World):
    commands = {command["name"]: command for command in world.discord.commands}

    imagine = commands["imagine"]
    assert set(imagine["description_localizations"]) == LOCALES
    assert imagine["description_localizations"]["zh-CN"] == "用 Seedream 4.0 生成图片。"
    assert imagine["description_localizations"]["fr"] == "Génère des images avec Seedream 4.0."
    prompt = next(option for option in imagine["options"] if option["name"] == "prompt")
    assert prompt["description_localizations"]["zh-CN"] == "要画什么"
    for command in world.discord.commands:
        assert not command.get("name_localizations"), command["name"]  # names stay English
        if command.get("type", 1) != 1:
            continue
        assert set(command["description_localizations"]) == LOCALES, command["name"]
        for option in localized_options(command.get("options")):
            assert not option.get("name_localizations"), option["name"]
            assert set(option["description_localizations"]) == LOCALES, (command["name"], option["name"])

    default = next(o for o in commands["quota-admin"]["options"] if o["name"] == "default")
    period = next(o for o in default["options"] if o["name"] == "period")
    names = {choice["value"]: choice for choice in period["choices"]}
    assert names["daily"]["name"] == "daily"
    assert names["daily"]["name_localizations"]["zh-CN"] == "每天"
    assert names["weekly"]["name_localizations"]["de"] == "wöchentlich"
    assert set(names["monthly"]["name_localizations"]) == LOCALES


async def test_result_buttons_and_the_picker_speak_the_requesters_language(world: World):
    single = await imagine_as(world.discord, "zh-CN", prompt="一只猫")
    await finished(single)
    labels = [c.get("label") for row in image_messages(single)[0].components for c in row["components"]]
    assert labels == ["重新生成", "编辑", "放大到 4K", "删除"]

    slow_first_post(world.discord)  # images 2 and 3 are then added to the set's message, with the picker
    trio = await imagine_as(world.discord, "fr", prompt="trois chats", count=3)
    await finished(trio)
    [select_row, button_row] = image_messages(trio)[-1].components
    [select] = select_row["components"]
    assert select["placeholder"] == "Modifier ou agrandir une de ces images…"
    assert [option["label"] for option in select["options"]] == ["Image 1", "Image 2", "Image 3"]
    assert [c["label"] for c in button_row["components"]] == ["Relancer", "Supprimer"]


async def test_quota_show_answers_in_the_members_language(world: World):
    answer = await (await world.discord.slash("quota", {}, subcommand="show", locale="zh-CN")).wait_response()

    embed = answer.embeds[0]
    assert answer.ephemeral
    assert embed["title"].startswith("图片额度：")
    assert "今天还剩 **25**（共 25 张图片）。" in embed["description"]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["今天已用"] == "0 张图片"
    assert fields["上限"].startswith("每天 25 张图片\n机器人的默认值")


async def test_the_audit_channel_speaks_the_servers_language_and_the_moderator_their_own(
        boot: BotStarter, fake_discord, relay):
    fake_discord.guild.locale = "zh-CN"  # the server's Community language (guild_locale)
    mod_log = fake_discord.add_channel(fake_discord.guild, "mod-log")
    mod, alice = fake_discord.mod, fake_discord.alice

    async def moderate(subcommand: str, **options):
        interaction = await fake_discord.slash("quota-admin", options, subcommand=subcommand, user=mod, locale="en-US")
        return await interaction.wait_response()

    async with boot(quota_default_limit=2):
        await moderate("audit-channel", channel=mod_log)
        answer = await moderate("grant", user=alice, amount=3, reason="contest")
        posts = await fake_discord.wait_for(lambda: (p := fake_discord.messages(mod_log)) and len(p) >= 2 and p,
                                            what="two audit posts")

    assert answer.content.startswith(f"✅ Granted <@{alice.id}> **3 images** extra today")
    assert "Reason: contest" in answer.content
    grant = posts[1].embeds[0]
    assert grant["title"] == "/quota-admin grant"  # command names stay English
    assert grant["description"].startswith(f"已给予 <@{alice.id}> 今天额外 **3 张图片**")
    fields = {field["name"]: field["value"] for field in grant["fields"]}
    assert fields["管理员"] == f"<@{mod.id}>" and fields["原因"] == "contest"


async def test_a_job_resumed_after_a_restart_speaks_the_language_stored_with_the_job(boot: BotStarter, fake_discord,
                                                                                      database_url):
    async with boot() as first:
        owner = instance_name(first.settings)  # the crashed run: the same instance as the next start
    database = Database(database_url)
    jobs = JobStore(database, owner=owner)
    # A job from before delivery records were stored: it is answered in its channel.
    job = await jobs.create(kind="imagine", requester_id=fake_discord.alice.id, guild_id=fake_discord.guild.id,
                            channel_id=fake_discord.general.id,
                            request=StoredRequest(prompt="丢失", size="2K", count=1, locale="zh-CN"))
    await jobs.claim(capacity=1, relay_slots=1, per_user=1)
    await database.close()

    async with boot():
        result = await fake_discord.wait_for_message(fake_discord.general, lambda m: bool(m.files))

    # One reply in the channel: the image with the summary, in the job's language.
    assert result.content.startswith(f"<@{fake_discord.alice.id}> ✅ 用时") and job.id in result.content


async def test_the_edit_form_speaks_the_members_language(world: World):
    fake = world.discord
    posted = await fake.user_message(fake.general, fake.alice, "two cats", attachments=[("one.png", RED),
                                                                                       ("two.png", GREEN)])
    opened = await fake.context_menu("Edit with Seedream", posted, locale="zh-CN")
    modal = (await opened.wait_callback()).data

    assert modal["title"] == "用 Seedream 编辑 2 张图片"
    labels = [c["label"] for row in modal["components"] for c in row["components"]]
    assert labels == ["要改什么？", "尺寸（可选）"]


async def test_a_reply_edit_which_carries_no_locale_speaks_the_servers_language(boot: BotStarter, fake_discord,
                                                                                relay):
    fake_discord.guild.locale = "zh-CN"
    async with boot():
        upload = await fake_discord.user_message(fake_discord.general, fake_discord.mod, "猫",
                                                 attachments=[("cat.png", RED)])
        asked = await fake_discord.user_message(fake_discord.general, fake_discord.alice,
                                                f"{fake_discord.bot_user.mention} 给它戴上帽子", reply_to=upload)

        def status():
            return next((m for m in bot_replies(fake_discord, asked) if m.content.startswith("✅")), None)

        done = await fake_discord.wait_for(status, 15.0, what="the reply's final status")

    assert done.content.startswith("✅ 用时") and "1 张图片" in done.content
    [request] = relay.requests
    assert request.body["prompt"] == "给它戴上帽子"
