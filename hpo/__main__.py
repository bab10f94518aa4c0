"""`python -m hpo`: the hpo command without its console script.

dvc.yaml runs the stages this way, so the pipeline works in a checkout where hpo is not
pip-installed (run from the project root, the package is found there), with whichever `python`
on PATH has the dependencies.
"""

import sys

from hpo.cli import main

sys.exit(main())
