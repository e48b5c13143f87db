"""The deployment files as the tests read them: compose interpolation (${VAR}, :-, -, :?, ?, :+, +, $$) applied to a
loaded file as Docker Compose applies it, a sample environment of secrets, and .dockerignore matching. No Docker
engine runs here, so this is how tests/deploy sees what compose would run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.constants import ROOT

DEPLOY = ROOT / "deploy"
INFRA = DEPLOY / "compose.infra.yml"
APP = DEPLOY / "compose.app.yml"
WORKER = DEPLOY / "compose.worker.yml"
COMPOSE_FILES = (INFRA, APP, WORKER)

# What an operator exports (the secrets are samples of the documented shapes, never real ones).
SAMPLE_ENV = {
    "INFRA_HOST": "10.0.0.5",
    "MONGO_ROOT_PASSWORD": "b0d1e5f2a3c4b5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2",
    "MONGO_APP_PASSWORD": "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3",
    "MONGO_REPLICA_KEY": "c2FtcGxlLXJlcGxpY2Eta2V5LW9mLXRoZS10ZXN0cy1vbmx5",
    "REDIS_PASSWORD": "5f4dcc3b5aa765d61d8327deb882cf995f4dcc3b5aa765d61d8327deb882cf99",
    "WAQ_API_KEYS": "ops:admin:ops-key-0123456789abcdef0123,shop:producer:shop-key-0123456789abcdef012",
    "WAQ_FLOWER_AUTH": "admin:flower-password-1",
}

_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:\?|\?|:-|-|:\+|\+)(?P<arg>.*))?$", re.S)


class MissingVariable(Exception):
    """A required variable (${VAR:?message}) is unset or empty: compose refuses to start."""


def interpolate(text: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match["plain"]:
            return env.get(match["plain"], "")
        parsed = _BRACED.match(match["braced"])
        assert parsed, f"bad interpolation {match.group(0)!r}"
        var, op, arg = parsed["var"], parsed["op"], parsed["arg"] or ""
        value = env.get(var)
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise MissingVariable(f"{var}: {arg}")
            return value
        if op in (":-", "-"):
            return value if value is not None and (op == "-" or value != "") else interpolate(arg, env)
        if op in (":+", "+"):
            return interpolate(arg, env) if value is not None and (op == "+" or value != "") else ""
        return value or ""

    return _VAR.sub(one, text)


def variables(text: str) -> list[tuple[str, str | None, str]]:
    """(name, operator, argument) of every ${...} in text ($$ skipped)."""
    found = []
    for match in _VAR.finditer(text):
        if match["plain"]:
            found.append((match["plain"], None, ""))
        elif match["braced"] is not None:
            parsed = _BRACED.match(match["braced"])
            assert parsed, f"bad interpolation {match.group(0)!r}"
            found.append((parsed["var"], parsed["op"], parsed["arg"] or ""))
    return found


def _walk(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}  # compose interpolates values, not keys
    if isinstance(node, list):
        return [_walk(item, env) for item in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def raw(path: Path) -> dict[str, Any]:
    """The file as written (PyYAML resolves the <<: merge keys as compose does)."""
    return yaml.safe_load(path.read_text())


def load(path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as compose runs it with env (SAMPLE_ENV by default); MissingVariable when a required one is unset."""
    return _walk(raw(path), SAMPLE_ENV if env is None else env)


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def ours(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the wa-queue image (built from the repository)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def redis_server_args(infra: dict[str, Any], password: str) -> list[str]:
    """The redis-server arguments of the infra file's redis service, its password filled in as its shell would."""
    command = argv(infra["services"]["redis"]["command"])
    assert command[:2] == ["sh", "-c"], command
    words = shlex.split(command[2])
    assert words[:3] == ["exec", "docker-entrypoint.sh", "redis-server"], words
    return [password if word == "$REDISCLI_AUTH" else word for word in words[3:]]


def duration_s(text: str) -> float:
    """Compose durations: '210s', '3m30s', '1h', '500ms'."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(text))
    assert parts and "".join(n + u for n, u in parts) == str(text), f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def size_bytes(text: str | int) -> int:
    """Compose byte sizes: '2g', '1536m', '512mb', 1024."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"(\d+)([bkmg])b?", str(text).lower())
    assert match, f"not a size: {text!r}"
    return int(match[1]) * {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match[2]]


# ---- .dockerignore -----------------------------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "$")


def dockerignore_excludes(ignore_text: str, path: str) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: the last matching pattern wins, a `!` pattern
    takes a path back, and a path is out when it or a folder above it matches."""
    rules = []
    for line in ignore_text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((keep, _pattern_regex(pattern)))
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for keep, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not keep
    return excluded
