"""The course's own tooling: releasing exercises, keeping notebooks clean, and the hidden checks."""
