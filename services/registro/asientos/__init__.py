"""Asientos: registering, reading, searching and annulling the entries and exits of the book."""
