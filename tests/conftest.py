import os
import sys

# Tests import the package from the source tree (built in place by `pip install -e .`) or from
# the installed wheel; either way the field tables and the core agree.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
