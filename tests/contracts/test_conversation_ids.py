"""bot.contracts.conversation_ids: the one rule for ``<channel>-<native id>``."""

import pytest

from bot.contracts import conversation_ids


@pytest.mark.parametrize(
    "channel, native, conversation_id",
    [
        ("web", "3f2a9c", "web-3f2a9c"),
        ("telegram", 1111111, "telegram-1111111"),
        ("telegram", -1001234, "telegram--1001234"),
        ("whatsapp", "971501112233", "whatsapp-971501112233"),
    ],
)
def test_make_and_parse_are_inverse(channel: str, native: object, conversation_id: str) -> None:
    assert conversation_ids.make(channel, native) == conversation_id
    assert conversation_ids.parse(conversation_id) == (channel, str(native))
    assert conversation_ids.channel_from_id(conversation_id) == channel


@pytest.mark.parametrize("channel, native", [("sms", "1"), ("rest", "1"), ("web", "")])
def test_make_refuses_an_unknown_channel_or_an_empty_native_id(channel: str, native: str) -> None:
    with pytest.raises(ValueError):
        conversation_ids.make(channel, native)


@pytest.mark.parametrize("conversation_id", ["3f2a9c", "sms-1", "erased-ab12", "telegram-", "telegram", "", "-web"])
def test_anything_else_names_no_channel(conversation_id: str) -> None:
    assert conversation_ids.parse(conversation_id) is None
    assert conversation_ids.channel_from_id(conversation_id) == conversation_ids.OTHER


def test_rasas_web_input_channels_are_the_web_channel() -> None:
    assert [conversation_ids.channel_from_input(name) for name in ("rest", "socketio", "telegram", "cmdline")] == [
        "web",
        "web",
        "telegram",
        "cmdline",
    ]
