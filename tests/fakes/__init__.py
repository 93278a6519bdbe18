"""Local HTTP servers speaking the documented APIs of services tests cannot reach (Telegram, Meta's Graph API,
HubSpot, an OpenAI-compatible LLM). Imported as a package by tests and benchmarks."""
