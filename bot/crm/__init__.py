"""Contacts, deals and notes in an external CRM, fed through a durable outbox.

The built-in CRM is the business DB itself (``contacts``, ``deals``, ``deal_notes``); with
``crm_provider = "sql"`` nothing is sent anywhere. Another provider (``hubspot``) gets every change of a
deal, queued by :mod:`bot.commerce.deals` in the outbox and delivered by a background worker.

- :mod:`bot.crm.base`: the records sent (:class:`~bot.crm.base.ContactRecord`,
  :class:`~bot.crm.base.DealRecord`), the errors, and :class:`~bot.crm.base.CRMProvider`, the base class of
  an adapter;
- :mod:`bot.crm.sql`, :mod:`bot.crm.hubspot`: the adapters, one per file;
- :mod:`bot.crm.registry`: the ``crm_provider`` setting → the adapter;
- :mod:`bot.crm.outbox`: the queue (``crm_outbox``) and its worker (``python -m bot crm-worker``).

A new CRM: a ``CRMProvider`` subclass in a new file here, plus its line in ``registry.ADAPTERS``.
"""
