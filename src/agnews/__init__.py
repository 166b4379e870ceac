"""agnews: a reproducible DVC pipeline for neural news-topic classification on AG News."""

CLASS_NAMES = ("World", "Sports", "Business", "Sci/Tech")
NUM_CLASSES = len(CLASS_NAMES)
