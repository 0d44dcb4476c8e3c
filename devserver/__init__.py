"""`tenrusl dev`: the whole system in one process on embedded defaults, for a laptop."""
