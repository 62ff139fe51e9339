"""The Store's operations, one module each; every function takes the :class:`~imagestore.store.state.StoreState`
of the store it works on (and of the target store, for copies)."""
