"""The Discord front end: a discord.py adapter over the studio use cases."""
