"""Payments: prepayment links for a quote through YooKassa (:mod:`bot.payments.yookassa`, the API client;
:mod:`bot.payments.service`, the ``payments`` rows, the link and the notifications that settle it)."""
