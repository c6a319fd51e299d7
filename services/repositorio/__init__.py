"""repositorio: the documents store (ENI documento electrónico), versions and downloads."""
