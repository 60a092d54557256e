from studio.store.repository import Store

__all__ = ["Store"]
