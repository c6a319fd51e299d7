"""The sede electrónica: what a citizen may present, and presenting it (Ley 39/2015, art. 16)."""
