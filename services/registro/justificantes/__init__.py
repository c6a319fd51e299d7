"""Justificantes: the receipt the register gives for every entry and exit (Ley 39/2015, art. 16.3).

The registro renders it (``pdf.py``) and asks the repositorio, over the bus, to issue it
with a CSV; it records the answer, and staff may ask again for one that failed.
"""
