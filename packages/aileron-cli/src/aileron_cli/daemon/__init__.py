"""The user-scoped Aileron daemon: the FastAPI app, its stores and its process model."""
