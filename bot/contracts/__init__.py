"""What the two Python environments agree on: the Rasa server's channels (``connectors/``, ``.venv-rasa``:
Python 3.10, SQLAlchemy 1.4) and the console and action server (``bot/``, ``actions/``, ``.venv``:
Python 3.11, SQLAlchemy 2). Standard library and SQLAlchemy Core only, valid on 1.4 and 2.0; importing
this package imports nothing else.

- :mod:`bot.contracts.conversation_ids`: ``<channel>-<native id>``, the channel list, ``rest``/``socketio`` → ``web``.
- :mod:`bot.contracts.channel_tables`: the four tables the channels write (deliveries, customers, messages,
  Telegram callbacks) and the MetaData every business table is defined on.
- :mod:`bot.contracts.database`: the business DB's default URL and the SQLite pragmas of every engine on it.
- :mod:`bot.contracts.paused`: the holding message of a conversation paused for a manager (action, slot, interval).
"""
