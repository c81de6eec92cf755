"""One fake per outside service, each a pytest-httpserver handler speaking the real wire format.

* ``tests.fakes.telegram.FakeTelegram``: the Bot API;
* ``tests.fakes.aiml.FakeAiml``: AIML's image generation endpoint and the files it links to.

The app talks to them with its real clients (``chalicelib.telegram``,
``chalicelib.providers.aiml``), so a test covers the HTTP layer too.
"""
