"""The Atelier domain: recipes, the model catalogue, state, the queue contract and use cases.

Nothing here imports discord, fastapi, torch or diffusers (tests/unit/test_layering.py).
"""
