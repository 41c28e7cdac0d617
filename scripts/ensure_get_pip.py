"""Make sure ansible-test finds its pip bootstrap script in its cache.

ansible-test (``_util/target/setup/requirements.py``, ``bootstrap()``) bootstraps
pip in every sanity virtualenv with ``get-pip-<version>.py`` downloaded from a
CI file host and cached as ``~/.ansible/test/cache/get_pip_<version with _>.py``.
This script reads the URL and cache path from the installed ansible-test, tries
the real download with a short timeout and, only when that fails, installs
scripts/get_pip_standin.py under the cache name.

Run it with the interpreter of the virtualenv that holds ansible-test.
"""
import os
import re
import shutil
import sys
import tempfile
import types
import urllib.request

import ansible_test
from ansible_test._internal.python_requirements import get_venv_packages

DOWNLOAD_TIMEOUT = 10
STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "get_pip_standin.py")
SETUP_SCRIPT = os.path.join(os.path.dirname(ansible_test.__file__), "_util", "target", "setup", "requirements.py")


def bootstrap_templates():
    """Return the (url, cache path) templates that ansible-test's bootstrap() uses."""
    with open(SETUP_SCRIPT, encoding="utf-8") as handle:
        source = handle.read()
    url = re.search(r"url = '([^']*get-pip-%s\.py)'", source)
    cache = re.search(r"cache_path = os\.path\.expanduser\('([^']*get_pip_%s\.py)'", source)
    if not url or not cache:
        sys.exit("ensure_get_pip: cannot find the get-pip URL or cache path in %s; "
                 "ansible-test changed how it bootstraps pip" % SETUP_SCRIPT)
    return url.group(1), cache.group(1)


def pip_version(python_version):
    """The pip version ansible-test installs into its virtualenvs."""
    return get_venv_packages(types.SimpleNamespace(version=python_version))["pip"]


def private_partial(path):
    """A new file next to ``path``, only this process writes: concurrent runs never share one."""
    handle, partial = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".partial",
                                       dir=os.path.dirname(path))
    os.close(handle)
    os.chmod(partial, 0o644)  # mkstemp's 0600 would differ from a plain copy's mode
    return partial


def download(url, path):
    """Fetch ``url`` into ``path``; return the error text or None on success."""
    partial = private_partial(path)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        os.unlink(partial)
        return str(error)
    os.replace(partial, path)
    return None


def install_standin(path):
    """Copy the stand-in to ``path`` with a rename, so a reader never sees half a file."""
    partial = private_partial(path)
    shutil.copyfile(STANDIN, partial)
    os.replace(partial, path)


def main():
    python_version = "%d.%d" % sys.version_info[:2]
    version = pip_version(python_version)
    url_template, cache_template = bootstrap_templates()
    url = url_template % version
    cache_path = os.path.expanduser(cache_template % version.replace(".", "_"))
    if os.path.exists(cache_path):
        print("ensure_get_pip: using %s" % cache_path)
        return
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    error = download(url, cache_path)
    if error is None:
        print("ensure_get_pip: downloaded %s" % url)
        return
    install_standin(cache_path)
    print("ensure_get_pip: %s unreachable (%s); installed the ensurepip stand-in as %s"
          % (url, error, cache_path))


if __name__ == "__main__":
    main()
