"""Serving: classifying texts with a checkpoint (predict) and the HTTP service (serve)."""
