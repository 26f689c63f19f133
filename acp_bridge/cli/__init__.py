"""The ``acp-bridge`` command: ``serve``, ``connect`` and ``translate``."""
