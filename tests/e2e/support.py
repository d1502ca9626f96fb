"""Plain helpers for the basalt end-to-end suite: config rendering, server
processes, clients, event-stream and Prometheus parsing.

Fixtures live in conftest.py; this module holds no pytest state so test modules
can import it directly (``from support import ...``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.config
import openai
from botocore.eventstream import EventStreamBuffer

MODEL_ID = "google.gemma-3-270m"
EMBED_MODEL_ID = "sentence-transformers.all-minilm-l6-v2"
MODEL_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL_ID}"
REGION = "us-east-1"

AUTH_ACCESS_KEY_ID = "AKIDEXAMPLE"
AUTH_SECRET_ACCESS_KEY = "SECRETEXAMPLE"
AUTH_API_KEY = "sk-test-123"

STARTUP_TIMEOUT_S = 120.0
SHUTDOWN_GRACE_S = 10.0
CLIENT_READ_TIMEOUT_S = 120

# Every server that is running right now; conftest attaches their log tails to
# the report of a failing test.
LIVE_SERVERS: list["BasaltServer"] = []


class SetupError(Exception):
    """The environment the suite needs is missing (env var, file)."""


def basalt_bin() -> str:
    """Absolute path of the binary under test, from $BASALT_BIN."""
    value = os.environ.get("BASALT_BIN")
    if not value:
        raise SetupError(
            "BASALT_BIN is not set: export BASALT_BIN=/abs/path/to/basalt "
            "(e.g. $(pwd)/target/release/basalt after `cargo build --release`)"
        )
    path = Path(value)
    if not path.is_absolute():
        raise SetupError(f"BASALT_BIN must be an absolute path, got {value!r}")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise SetupError(f"BASALT_BIN={value!r} is not an executable file")
    return str(path)


def _model_file(var: str, hint: str) -> str:
    """Absolute path of a model file named by the environment variable `var`."""
    value = os.environ.get(var)
    if not value:
        raise SetupError(f"{var} is not set: export {var}=/abs/path/to/{hint}")
    path = Path(value)
    if not path.is_absolute():
        raise SetupError(f"{var} must be an absolute path, got {value!r}")
    if not path.is_file():
        raise SetupError(f"{var}={value!r} does not exist")
    return str(path)


def model_path() -> str:
    """The Gemma 3 270M GGUF, from $BASALT_TEST_MODEL."""
    return _model_file(
        "BASALT_TEST_MODEL",
        "gemma-3-270m-q4_k_m.gguf (`basalt models pull` fetches it and prints its path)",
    )


def embed_model_path() -> str:
    """all-MiniLM-L6-v2 converted to GGUF, from $BASALT_TEST_EMBED_MODEL."""
    return _model_file(
        "BASALT_TEST_EMBED_MODEL",
        "model-q8_0.gguf (`basalt models pull sentence-transformers.all-minilm-l6-v2` prints it)",
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _toml_str(value: str) -> str:
    # JSON string escapes (\" \\ \n \uXXXX) are valid TOML basic-string escapes.
    return json.dumps(value)


def render_config(
    *,
    port: int,
    data_dir: Path,
    model_path: str,
    max_body_bytes: int = 262144,
    context_window: int = 4096,
    threads: int = 2,
    parallel: int = 4,
    max_queue: int = 64,
    default_max_tokens: int = 256,
    auth: bool = False,
    request_timeout_seconds: int = 300,
    extra_models: str = "",
    embedding_model: bool = True,
    buckets: dict[str, str | dict] | None = None,
    hnsw_from_chunks: int | None = None,
) -> str:
    text = f"""\
[server]
listen = {_toml_str(f"127.0.0.1:{port}")}
max_body_bytes = {max_body_bytes}
request_timeout_seconds = {request_timeout_seconds}

[store]
data_dir = {_toml_str(str(data_dir))}

[[models]]
id = {_toml_str(MODEL_ID)}
name = "Gemma 3 270M"
provider = "Google"
chat_template = "gemma"
context_window = {context_window}
price_per_1k_input_tokens = 0.01
price_per_1k_output_tokens = 0.02
threads = {threads}
parallel = {parallel}
max_queue = {max_queue}
default_max_tokens = {default_max_tokens}
[models.source]
path = {_toml_str(model_path)}
""" + extra_models
    if embedding_model:
        text += f"""
[[models]]
id = {_toml_str(EMBED_MODEL_ID)}
name = "all-MiniLM-L6-v2"
provider = "sentence-transformers"
kind = "embedding"
context_window = 256
price_per_1k_input_tokens = 0.001
threads = {threads}
parallel = 32
batch_tokens = 256
[models.source]
path = {_toml_str(embed_model_path())}
"""
    if buckets or hnsw_from_chunks is not None:
        def where(v) -> str:  # a directory, or an S3 endpoint's settings
            if isinstance(v, dict):
                return "{ " + ", ".join(f"{k} = {_toml_str(str(x))}" for k, x in v.items()) + " }"
            return _toml_str(str(v))
        text += "\n[knowledge]\n"
        if hnsw_from_chunks is not None:
            text += f"hnsw_from_chunks = {hnsw_from_chunks}\n"
        text += "buckets = { " + ", ".join(
            f"{_toml_str(name)} = {where(v)}" for name, v in (buckets or {}).items()
        ) + " }\n"
    if auth:
        text += f"""
[auth]
access_keys = [{{ access_key_id = {_toml_str(AUTH_ACCESS_KEY_ID)}, secret_access_key = {_toml_str(AUTH_SECRET_ACCESS_KEY)} }}]
api_keys = [{_toml_str(AUTH_API_KEY)}]
"""
    return text


def tail(path: Path, lines: int = 60) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(data[-lines:])


class BasaltServer:
    """One `basalt serve` process with its own config, port and data dir."""

    def __init__(self, workdir: Path, **config_options):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / "data"
        self.config_path = workdir / "basalt.toml"
        self.stderr_path = workdir / "basalt.stderr.log"
        self.stdout_path = workdir / "basalt.stdout.log"
        self.bin = basalt_bin()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            render_config(
                port=self.port,
                data_dir=self.data_dir,
                model_path=model_path(),
                **config_options,
            )
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> "BasaltServer":
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [self.bin, "serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.workdir,
            )
        LIVE_SERVERS.append(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last_error = "no attempt yet"
        while time.monotonic() < deadline:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                raise SetupError(
                    f"basalt serve exited with code {code} before it was ready.\n"
                    f"config {self.config_path}:\n{self.config_path.read_text()}\n"
                    f"--- stderr (tail) ---\n{tail(self.stderr_path)}"
                )
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=5) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"GET /ping -> {resp.status}"
            except urllib.error.HTTPError as e:
                last_error = f"GET /ping -> {e.code}"
            except (urllib.error.URLError, OSError) as e:
                last_error = f"GET /ping: {e}"
            time.sleep(0.25)
        raise SetupError(
            f"basalt serve was not ready after {STARTUP_TIMEOUT_S:.0f}s "
            f"(last: {last_error}).\n--- stderr (tail) ---\n{tail(self.stderr_path)}"
        )

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=SHUTDOWN_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=SHUTDOWN_GRACE_S)
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)

    def crash(self) -> None:
        """SIGKILL: no shutdown path runs, as in a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=SHUTDOWN_GRACE_S)
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)

    def stderr_tail(self, lines: int = 60) -> str:
        return tail(self.stderr_path, lines)

    def run_cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run `basalt ARGS... --config <this server's config>`."""
        return subprocess.run(
            [self.bin, *args, "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
        )


# ---------------------------------------------------------------- clients


def boto_config(**overrides) -> botocore.config.Config:
    # total_max_attempts=1 means no retry at all (legacy `max_attempts: 1` still
    # allows one retry).
    options = dict(
        retries={"total_max_attempts": 1, "mode": "standard"},
        read_timeout=CLIENT_READ_TIMEOUT_S,
        connect_timeout=10,
    )
    options.update(overrides)
    return botocore.config.Config(**options)


def boto_client(
    service: str,
    url: str,
    *,
    access_key: str = "x",
    secret_key: str = "x",
    **config_overrides,
):
    """A client from a fresh Session (Sessions are not thread-safe; this is)."""
    session = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=boto_config(**config_overrides),
    )


def openai_client(url: str, api_key: str = "x") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=CLIENT_READ_TIMEOUT_S
    )


# ---------------------------------------------------------------- requests


def user(text: str) -> dict:
    return {"role": "user", "content": [{"text": text}]}


def converse(client, prompt: str, *, max_tokens: int = 16, system: str | None = None, **extra):
    kwargs = dict(
        modelId=MODEL_ID,
        messages=[user(prompt)],
        inferenceConfig={"maxTokens": max_tokens, "temperature": 0.0},
    )
    if system is not None:
        kwargs["system"] = [{"text": system}]
    kwargs.update(extra)
    return client.converse(**kwargs)


def collect_converse_stream(response) -> list[tuple[str, dict]]:
    """All events of a ConverseStream response as (event name, payload) pairs."""
    events = []
    for event in response["stream"]:
        assert len(event) == 1, f"one member per event, got {event!r}"
        (name, payload), = event.items()
        events.append((name, payload))
    return events


def stream_text(events: list[tuple[str, dict]]) -> str:
    return "".join(
        payload["delta"]["text"]
        for name, payload in events
        if name == "contentBlockDelta" and "text" in payload["delta"]
    )


def assert_healthy(client) -> None:
    """A normal converse still works (the server survived whatever came before)."""
    resp = converse(client, "The capital of France is", max_tokens=4)
    assert resp["output"]["message"]["role"] == "assistant"
    assert resp["usage"]["inputTokens"] > 0


# ---------------------------------------------------------------- raw HTTP


def read_event_frames(resp, count: int) -> list[dict]:
    """Read `count` event-stream frames from an http.client response.

    Returns their headers (dicts); stops early at end of body.
    """
    buf = EventStreamBuffer()
    frames: list[dict] = []
    while len(frames) < count:
        data = resp.read1(4096) if hasattr(resp, "read1") else resp.read(4096)
        if not data:
            break
        buf.add_data(data)
        for message in buf:
            frames.append(dict(message.headers))
    return frames


# ---------------------------------------------------------------- Prometheus

_SAMPLE_RE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\d+)?$"
)
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict, float]]:
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        labels = dict(_LABEL_RE.findall(m.group("labels") or ""))
        samples.append((m.group("name"), labels, float(m.group("value"))))
    return samples


def metric_sum(text: str, name: str, **labels: str) -> float | None:
    """Sum of every sample of `name` whose labels include `labels`; None if none."""
    values = [
        value
        for sample_name, sample_labels, value in parse_prometheus(text)
        if sample_name == name
        and all(sample_labels.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None


def get_metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def numbers_in(text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]

