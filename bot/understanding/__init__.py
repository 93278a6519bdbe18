"""Understanding what the customer meant when NLU could not: the LLM picks an intent and entities of the
domain for a message NLU classified ``nlu_fallback`` (:mod:`bot.understanding.llm_parse`)."""
