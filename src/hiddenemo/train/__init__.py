"""Training: both stages, honest selection, voting inference (Lightning lives here, not in models/data)."""
