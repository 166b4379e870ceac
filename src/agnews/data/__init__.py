"""Data: the raw AG News rows (raw), preprocessing (text), vocabularies (vocab), tensor shards
(shards), the prepare step that makes them (prepare) and batches for the model (batching)."""
