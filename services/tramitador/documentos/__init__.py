"""documentos: the expediente's documents, issued from the procedure's templates through
the platform's issuing chain (CSV, seal, time-stamp) or attached from the repositorio."""
