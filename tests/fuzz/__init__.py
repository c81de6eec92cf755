"""Hypothesis strategies and the fuzz driver shared by ``tests/integration/test_fuzz.py`` and ``bench/fuzz_long.py``.

Split by what they generate: ``values`` (constants, the OpenAPI document,
JSON values and bodies from its schemas, the ``World`` of known things),
``requests`` (credentials and whole HTTP requests), ``updates`` (Telegram
updates) and ``oracle`` (the driver that sends them and checks every answer).

What is fuzzed:

* every operation of ``openapi.yaml`` that app.py serves: request bodies
  generated from the documented request schemas, then broken on purpose
  (wrong types, missing and unknown fields, boundary lengths, lone
  surrogates, non-JSON bytes, huge numbers, deep nesting); path parameters,
  query strings and headers from their schemas and from hand-written
  malicious shapes;
* credentials: valid initData of known users (one of them an admin by
  ``ADMIN_USER_IDS``), signed initData whose ``user`` is malformed, forged,
  expired or future initData, the admin token and wrong ones, other schemes;
* Telegram updates: messages, commands, prompts, edited messages, channel
  posts, pre-checkout queries, Stars payments (charge ids drawn from a small
  pool, so the same payment arrives again under another update id), updates
  the bot ignores and garbage, with and without the secret header; the Bot
  API is a local fake (``tests.fakes.telegram``, installed by
  ``oracle.install_fake_bot_api``), so nothing leaves the machine.

``Fuzzer.send`` is the oracle. For every answer: no 5xx; JSON with
``Content-Type: application/json``; an error body is exactly CONTRACT §4's
``{"error": {"code", "message"}}`` with a code that belongs to the status;
the status is one ``openapi.yaml`` documents for the operation and a 2xx
body matches the documented schema; refused credentials give 401/403 as
CONTRACT §3 says and valid ones never do; a refused or malformed update
calls no Bot API method; a replay of an earlier
``POST /api/generation`` (same user, key and body) returns that generation
with 200 while it is not failed or cancelled. The money invariants of
CONTRACT §6 are checked from the tables by the caller
(``local.invariants.violations()``).
"""
