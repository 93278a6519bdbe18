"""Handing a conversation to a human manager and back: escalations, the hand-over turn (handover), takeover, the
managers' Telegram notifications."""
