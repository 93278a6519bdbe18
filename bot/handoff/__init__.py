"""Handing a conversation to a human manager and back: escalations, takeover, the managers' Telegram notifications."""
