"""The demo warehouse used by ``make demo`` and ``make demo-run`` (see ``seed.py``)."""
