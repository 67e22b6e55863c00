import os
import sys

# Run against the source tree's package; meson passes CSP_LIBRARY.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
