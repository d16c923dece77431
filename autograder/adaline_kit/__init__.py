"""adaline-kit: an autograded PyTorch assignment kit.

The kit is generic; the assignment it grades is one package under ``assignments/``, reached
through :mod:`adaline_kit.assignment`.
"""

import sys

__version__ = "0.1.0"

# jsonschema (imported by nbformat and by the kit's own result checks) loads rfc3987_syntax when
# it is installed (Jupyter brings it), and building that module's grammar costs about 2 s of CPU
# in every grading process, for "iri" format checks nothing here asks for: jsonschema leaves
# those formats unchecked without it. A process that already imported it keeps it.
sys.modules.setdefault("rfc3987_syntax", None)
