"""procedimientos: the versioned catalogue of procedure definitions of each council."""
