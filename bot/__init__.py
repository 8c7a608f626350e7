"""alertbot: watches report feeds, matches topic rules, alerts Telegram subscribers."""

__version__ = "0.1.0"
