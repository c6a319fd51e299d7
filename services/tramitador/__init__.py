"""tramitador: case files (expedientes) and the catalogue of procedimientos."""
