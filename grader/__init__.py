"""The course's own tooling: releasing exercises, keeping notebooks clean, and the hidden checks."""

import sys

# jsonschema (under nbformat) imports rfc3987_syntax when it is installed (JupyterLab brings it), which builds a
# grammar at import: about 1.5 s of CPU in every process that reads a notebook (the grading process, each worker
# and trusted process). It only checks the "iri" string format, which no notebook schema uses.
sys.modules.setdefault("rfc3987_syntax", None)
