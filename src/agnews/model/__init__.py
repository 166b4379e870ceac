"""The model: the recurrent classifier family (classifier), checkpoints that carry their own
config and vocabularies (checkpoints), running it over a shard and the one logits -> label rule
(inference), and training (training and the modules it is made of)."""
