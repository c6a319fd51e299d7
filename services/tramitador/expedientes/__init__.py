"""expedientes: case files, their phases, trámites, plazos and history."""
