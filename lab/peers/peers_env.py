"""Virtualenv bootstrap shared by the peer scripts in lab/peers/.

The scripts are run with the system python3 (`python3 lab/peers/golden.py`).
`ensure_venv()` creates (or reuses) a virtualenv, installs the PyPI packages the
script needs into it when they are missing, and re-executes the script with the
virtualenv's interpreter.  Nothing is installed outside the virtualenv.

Environment:
  STRATA_PEERS_VENV   venv path (default: $HOME/.cache/strata/peers-venv)
"""

import importlib
import os
import platform
import subprocess
import sys

_REEXEC_MARK = "STRATA_PEERS_IN_VENV"


def venv_dir():
    default = os.path.join(os.path.expanduser("~"), ".cache", "strata", "peers-venv")
    return os.path.abspath(os.environ.get("STRATA_PEERS_VENV") or default)


def _venv_python(venv):
    return os.path.join(venv, "bin", "python")


def _in_venv(venv):
    return os.path.realpath(sys.prefix) == os.path.realpath(venv)


def _missing(requirements):
    """requirements: list of (import_name, pip_spec). Returns pip specs not importable."""
    out = []
    for mod, spec in requirements:
        try:
            importlib.import_module(mod)
        except Exception:  # ImportError, or a broken install
            out.append(spec)
    return out


def pip_install(specs, check=True, quiet=True):
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        cmd.append("-q")
    cmd += list(specs)
    print("[peers] pip install " + " ".join(specs), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=check)


def ensure_venv(requirements):
    """Make sure we run inside the peers venv with `requirements` importable.

    requirements: list of (import_name, pip_spec) pairs, e.g. ("torch", "torch==2.15.0").
    May re-exec the current script; returns only when running inside the venv.
    """
    venv = venv_dir()
    if not _in_venv(venv):
        if os.environ.get(_REEXEC_MARK) == "1":
            sys.exit("[peers] re-exec into %s did not land in the venv (sys.prefix=%s)" % (venv, sys.prefix))
        if not os.path.exists(_venv_python(venv)):
            print("[peers] creating virtualenv %s" % venv, file=sys.stderr, flush=True)
            os.makedirs(os.path.dirname(venv), exist_ok=True)
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([_venv_python(venv), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=False)
        env = dict(os.environ)
        env[_REEXEC_MARK] = "1"
        script = os.path.abspath(sys.argv[0])
        os.execve(_venv_python(venv), [_venv_python(venv), script] + sys.argv[1:], env)
    missing = _missing(requirements)
    if missing:
        pip_install(missing)
        importlib.invalidate_caches()
        still = _missing(requirements)
        if still:
            sys.exit("[peers] could not import after install: %s" % ", ".join(still))


def try_import(name):
    """Import a module, returning (module, None) or (None, reason)."""
    try:
        return importlib.import_module(name), None
    except Exception as e:  # noqa: BLE001 - any failure is a reason to skip
        return None, "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def cpu_name():
    """The CPU's model name (from /proc/cpuinfo), for the figures' records."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
