"""The `atelier` command line: imagine, history, worker, models, demo."""
