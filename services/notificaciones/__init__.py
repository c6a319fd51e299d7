"""notificaciones: binding electronic and postal notifications (Ley 39/2015, arts. 40-46)."""
