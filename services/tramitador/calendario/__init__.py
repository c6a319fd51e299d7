"""calendario: días hábiles of each council and the legal deadlines (Ley 39/2015, art. 30)."""
