"""The facade's engine, written once for every driver: the add pipeline, the verifying
reader, hashing, limits and progress. Drivers never import it."""
