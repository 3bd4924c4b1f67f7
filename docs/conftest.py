"""pytest settings for docs/: the pages' ``>>>`` examples are doctests.

``conf.py`` is Sphinx's configuration, not a module with tests, and ``_build``
holds build output; neither is collected. A page that changes lucid's thread
count gets it restored afterwards even when one of its examples fails, so the
pages and tests that run after it see the default.
"""
import pytest

import lucid

collect_ignore = ["conf.py", "_build", "_tools"]


@pytest.fixture(autouse=True)
def _restore_thread_count():
    before = lucid.get_num_threads()
    yield
    lucid.set_num_threads(before)
