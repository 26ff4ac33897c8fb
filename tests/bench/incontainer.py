"""Helpers of the benchmarks that time commands inside a lab container, so
that neither docker exec nor the host's load between runs is counted."""

import subprocess


def sh(container, script):
    """Runs a shell script in the container; returns its stdout."""
    return subprocess.run(["docker", "exec", container, "sh", "-c", script],
                          check=True, capture_output=True, text=True).stdout


def timed(container, command):
    """Seconds `command` takes inside the container, and its output."""
    out = sh(container, f"s=$(date +%s%N); {{ {command}; }} > /tmp/out 2>&1; e=$(date +%s%N); "
                        f"echo $(( (e - s) / 1000000 )); cat /tmp/out")
    ms, _, rest = out.partition("\n")
    return int(ms) / 1000, rest
