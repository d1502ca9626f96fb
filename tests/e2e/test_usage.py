"""Metering: calls made through the server are recorded in the store, and
`basalt usage --config PATH` reports them per model."""

from __future__ import annotations

import re
import time

import support
from support import MODEL_ID


def _model_line_numbers(out: str) -> list[float]:
    """Numbers on the lines that name the model (the model id's own digits removed)."""
    numbers: list[float] = []
    for line in out.splitlines():
        if MODEL_ID in line:
            numbers += support.numbers_in(line.replace(MODEL_ID, " "))
    return numbers


def test_usage_reports_metered_calls(server, runtime, oai):
    support.converse(runtime, "Hello there", max_tokens=8)
    oai.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": "Hello"}], max_tokens=8
    )

    # Metering may be written asynchronously: allow it a few seconds to land.
    deadline = time.monotonic() + 15
    while True:
        result = server.run_cli("usage")
        out = result.stdout
        if result.returncode == 0 and MODEL_ID in out and any(_model_line_numbers(out)):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{out}\nstderr:\n{result.stderr}"
    assert MODEL_ID in out, out
    assert re.search(r"total", out, re.IGNORECASE), out
    assert any(n > 0 for n in _model_line_numbers(out)), out
