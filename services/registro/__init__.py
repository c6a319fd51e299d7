"""registro: the legal register of documents entering and leaving the entity."""
