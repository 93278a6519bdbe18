"""Follow-ups: the messages Closer writes first — quote reminders, abandoned-cart and lead-form nudges —
planned and sent by the scheduled job ``follow_ups`` (:mod:`bot.follow_ups.sweep`) on the cadences of
``knowledge/follow_ups.yml`` (:mod:`bot.follow_ups.cadences`), through the Rasa server on the customer's own
channel (:mod:`bot.follow_ups.outreach`), never to a customer who opted out (:mod:`bot.follow_ups.opt_outs`).
"""
