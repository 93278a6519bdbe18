"""Closer's library, one package per subsystem; actions in ``actions/`` and the channels in
``connectors/`` call into it. The README's "Architecture" section maps the packages."""
