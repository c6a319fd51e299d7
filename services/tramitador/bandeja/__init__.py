"""bandeja: each user's worklist, the open trámites assigned to them, their roles and
their units, nearest deadline first."""
