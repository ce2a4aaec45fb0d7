"""Search spaces written against nasty's public API, the way a user would write their own."""
