"""One function per product action, called by every channel (the API, the bot, the admin API).

A handler authenticates, parses, calls one of these and shapes the answer;
the rules of the action (what is charged, queued, counted) live here once.
"""
