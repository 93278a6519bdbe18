"""Closer's own Rasa NLU graph components (config.yml names them by module path, e.g. `nlu.featurizers.E5Featurizer`).

They run inside the Rasa server's environment (`.venv-rasa`, Python 3.10, rasa 3.6.21), not in the action server's:
keep this package free of imports from `bot/` beyond `bot/contracts/`, and valid on Python 3.10.
"""
