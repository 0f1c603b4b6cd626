"""Stand-in for the get-pip bootstrap script ansible-test downloads from its CI file host.

ansible-test creates a virtual environment per sanity test and bootstraps pip
into it with a script fetched from a host outside the package registries. This
script does the same job with what is reachable: the interpreter's bundled pip
(ensurepip) upgraded from PyPI to the version ansible-test asks for.
"""

import subprocess
import sys

IGNORED = {"--no-setuptools", "--no-wheel"}
pip_args = [arg for arg in sys.argv[1:] if arg not in IGNORED]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + pip_args)
