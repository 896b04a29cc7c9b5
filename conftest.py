"""Repository-wide pytest configuration (applies to tests/ and packages/*/tests/).

Hypothesis profiles: ``ci`` when the CI environment variable is set (as .ci/run is), else
``dev``; ``HYPOTHESIS_PROFILE=<name>`` picks one explicitly.

* ``dev``: hypothesis' defaults, without the per-example deadline (tests that fsync files
  have no stable per-example time on a 2-core machine; speed is measured in benchmarks/).
* ``ci``: the same, derandomized so that a CI run is reproducible and never fails by chance,
  with no example database, and printing the reproduction blob on failure.
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import settings

# Catalog caches of non-local workspaces go to a throwaway directory, not the user's ~/.cache.
os.environ.setdefault("MOLEXP_CACHE_DIR", tempfile.mkdtemp(prefix="molexp-test-cache-"))

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
