"""The browser fixtures live in tests/browser/fixtures.py, a plugin of the root conftest, so the
end-to-end tests beside the bot (tests/e2e/test_web_studio.py) use the same browser."""
