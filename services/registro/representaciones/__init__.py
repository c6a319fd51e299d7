"""Representaciones: who may act for whom before this entity (Ley 39/2015, art. 5 and 6).

A citizen registering through the sede may act for somebody else only when the
register office has recorded that representation (an apoderamiento apud acta, or one
checked in the Registro Electrónico de Apoderamientos): who grants it (poderdante),
who holds it (representante), from and until when. A representation is never deleted;
revoking it records who, when and why, and it stops counting from then on.
"""
