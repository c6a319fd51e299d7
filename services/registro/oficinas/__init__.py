"""Oficinas de registro, libros de entrada y salida, and how an entity numbers its asientos.

An administrator creates the entity's oficinas (DIR3 codes), opens and closes its
libros, and chooses the numbering mode (central or per oficina); every change is
one transaction and audited. ``numerar`` is what registering calls: it checks the
oficina and the libro, and takes the asiento's gapless number in the mode of its
year. The rules themselves live in domain.py; the use cases in service.py.

Concurrency: registering holds a shared lock on what it checked (the oficina and
libro rows, and an advisory lock standing for the entity's numbering mode) until
it commits; closing an oficina or a libro, or changing the mode, takes the
exclusive one, so it waits for asientos in flight and no asiento slips into a
libro closed before it commits, or into a year under another mode.
"""
