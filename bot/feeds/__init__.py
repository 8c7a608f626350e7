"""Feeds: HTTP fetching, parsing into Items, and the full text of teaser entries."""
