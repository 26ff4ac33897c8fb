"""Fixtures of the crash-consistency harness (tests/crash): the system
tests' vendor package and artifact fixtures (built once per session, in
tests/system/conftest.py), and the figures each sweep prints at the end."""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

_spec = importlib.util.spec_from_file_location("system_conftest", HERE.parent / "system/conftest.py")
_system = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_system)
vendor_packages = _system.vendor_packages
artifacts = _system.artifacts

import crashlib  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    if crashlib.SUMMARY:
        terminalreporter.section("crash harness figures")
        for text in crashlib.SUMMARY:
            terminalreporter.write_line(text)
