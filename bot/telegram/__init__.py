"""Telegram: the Application and its handlers, message text, and delivery from the outbox."""
