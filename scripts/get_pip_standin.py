"""Offline stand-in for the ``get-pip.py`` that ansible-test bootstraps pip with.

ansible-test creates each sanity virtualenv without pip and then runs its cached
``get_pip_<version>.py`` with pip-install arguments such as
``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``.
When the real script cannot be downloaded, scripts/ensure_get_pip.py saves this
file under that name instead: it installs the pip bundled with Python
(``ensurepip``) and lets that pip install the requested packages from the
package index this machine is configured for.
"""
import os
import subprocess
import sys

# Options that get-pip.py understands itself; plain ``pip install`` rejects them.
GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def bootstrap_bundled_pip():
    """Install the pip wheel that ships with this Python."""
    subprocess.run(
        [sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def installed(package):
    """Tell whether ``package`` is importable by this interpreter."""
    probe = subprocess.run(
        [sys.executable, "-c", "import %s" % package],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return probe.returncode == 0


def remove_unwanted(options, env):
    """Honour --no-setuptools / --no-wheel: ensurepip may have installed them."""
    unwanted = [
        package
        for option, package in (("--no-setuptools", "setuptools"), ("--no-wheel", "wheel"))
        if option in options and installed(package)
    ]
    if unwanted:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet"] + unwanted,
            check=True,
            env=env,
        )


def main(options):
    # ensurepip points PIP_CONFIG_FILE at /dev/null in the process it runs in,
    # which would drop this machine's index and TLS settings; the installs
    # below use the environment as it was before.
    env = dict(os.environ)
    bootstrap_bundled_pip()
    pip_args = [option for option in options if option not in GET_PIP_ONLY_OPTIONS]
    subprocess.run([sys.executable, "-m", "pip", "install"] + pip_args, check=True, env=env)
    remove_unwanted(options, env)


if __name__ == "__main__":
    main(sys.argv[1:])
