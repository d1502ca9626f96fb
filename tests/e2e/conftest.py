"""Fixtures for the basalt end-to-end suite.

Each test module gets its own `basalt serve` (module-scoped `server`), started
from a config written into a tmp dir. Modules that need another config (auth,
throttling) call `start_server(...)` from their own module-scoped fixture.

Requires three environment variables, all absolute paths:
  BASALT_BIN                the basalt binary under test
  BASALT_TEST_MODEL         the Gemma 3 270M GGUF file
  BASALT_TEST_EMBED_MODEL   all-MiniLM-L6-v2 converted to GGUF (by `basalt models pull`)
"""

from __future__ import annotations

import pytest

import support
from support import BasaltServer, SetupError


@pytest.fixture(scope="session")
def start_server(tmp_path_factory):
    """Factory: start a server with config options (see support.render_config).

    Every server it started is stopped at the end of the scope that asked for
    it when used through `server_scope`; as a fallback, at session end.
    """
    started: list[BasaltServer] = []

    def _start(name: str = "basalt", **config_options) -> BasaltServer:
        try:
            srv = BasaltServer(tmp_path_factory.mktemp(name), **config_options)
            started.append(srv)
            return srv.start()
        except SetupError as e:
            pytest.fail(str(e), pytrace=False)

    yield _start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def server(start_server):
    """The default server (no auth, parallel=4, max_queue=64) for one module."""
    srv = start_server("basalt")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def runtime(server):
    return support.boto_client("bedrock-runtime", server.url)


@pytest.fixture(scope="module")
def control(server):
    return support.boto_client("bedrock", server.url)


@pytest.fixture(scope="module")
def oai(server):
    return support.openai_client(server.url)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of each running server's stderr to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in list(support.LIVE_SERVERS):
            report.sections.append(
                (f"basalt stderr ({srv.url}, tail)", srv.stderr_tail(80))
            )
