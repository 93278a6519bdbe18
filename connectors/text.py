"""Text cut to a messaging platform's limits."""


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters (a platform's message limit), cut at a line
    break or space when one is in the second half of the part; blank parts are dropped."""
    parts = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit + 1), text.rfind(" ", 0, limit + 1))
        if cut < limit // 2:
            parts.append(text[:limit])
            text = text[limit:]
        else:
            parts.append(text[:cut])
            text = text[cut + 1 :]
    return [part for part in [*parts, text] if part.strip()]
