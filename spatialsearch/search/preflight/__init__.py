"""The checks before Ray starts: folders, storage, data, memory, resources, the MLflow store.
May import the space, places, tracking's store, engine.ray_compat and engine.session, the core."""
