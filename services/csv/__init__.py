"""The csv service: Códigos Seguros de Verificación and their public verification pages."""
