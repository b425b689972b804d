"""Test-session set-up shared by tests/ and the doctests in skvae/."""

import os

# scikit-learn runs its array-API estimator check only when SciPy's array-API mode
# is on, and SciPy reads this variable once, at import: set it before anything
# imports scipy so that check runs instead of being skipped.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
