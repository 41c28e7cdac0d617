"""Make the repository importable, once for every suite.

- as ``ansible_collections.spdk.storage``: the checkout itself is the collection root, so a
  throw-away tree under ``.cache/collections`` links ``ansible_collections/spdk/storage`` to it;
- the test helpers as the package ``tests`` (``from tests.integration.spdk_targets import TARGET``):
  the repository root goes on ``sys.path`` here, the one place a suite's path is set.
"""
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, ".cache", "collections")


def _link_collection():
    namespace_dir = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "spdk")
    link = os.path.join(namespace_dir, "storage")
    os.makedirs(namespace_dir, exist_ok=True)
    if not os.path.islink(link):
        try:
            os.symlink(REPO_ROOT, link)
        except FileExistsError:  # another pytest worker won the race
            pass
    if COLLECTIONS_ROOT not in sys.path:
        sys.path.insert(0, COLLECTIONS_ROOT)
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS_ROOT)


def _tests_package():
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)


_link_collection()
_tests_package()
