"""Intercambios: asientos that travel to and from other registers in SICRES 3.0 (SIR).

``sicres.py`` reads and writes the Fichero_Intercambio_SICRES_3 against its XSD
(``sicres3/``), ``mensajes.py`` the ACK, confirmación and rejection messages; the
use cases export an asiento, receive a file, and accept or reject it.
"""
