"""The REST API: a FastAPI adapter over the same Studio use cases as the bot and the CLI."""
