"""Rasa InputChannel/OutputChannel classes of our own. They run inside the Rasa server process, so
they may import only what .venv-rasa has (rasa, python-telegram-bot, the standard library).
The web chat uses Rasa's built-in REST channel through the console."""
