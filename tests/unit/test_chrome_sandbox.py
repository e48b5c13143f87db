"""WAQ_CHROME_SANDBOX: the decision table (mode x root x user namespaces), the probe on this machine, the reason a
sandboxed Chrome gives when it cannot start, and the operator's hint for it."""

from __future__ import annotations

import pytest

from wa_queue.errors import ConfigError
from wa_queue.sessions import error_hint
from wa_queue.settings import Settings
from wa_queue.transport import sandbox
from wa_queue.transport.sandbox import UNUSABLE, sandbox_choice, unusable_reason

NO_USERNS = "unshare(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET): Operation not permitted"


def _fine() -> None:
    return None


def _refused() -> str:
    return NO_USERNS


def _unreached() -> str:
    raise AssertionError("the probe must not run for this mode")


@pytest.mark.parametrize(("mode", "euid", "probe", "sandboxed", "fallback", "said"), [
    ("auto", 1000, _fine, True, False, "user namespaces available"),
    ("auto", 1000, _refused, False, True, NO_USERNS),
    ("auto", 0, _unreached, False, False, "running as root"),
    ("on", 0, _unreached, True, False, "required by the operator"),
    ("on", 1000, _unreached, True, False, "required by the operator"),
    ("off", 1000, _unreached, False, False, "turned off by the operator"),
])
def test_choice(mode: str, euid: int, probe, sandboxed: bool, fallback: bool, said: str) -> None:  # noqa: ANN001
    choice = sandbox_choice(mode, euid=euid, probe=probe)
    assert choice.sandboxed is sandboxed and choice.fallback is fallback
    assert choice.args == (() if sandboxed else ("--no-sandbox",))
    assert said in choice.reason and f"WAQ_CHROME_SANDBOX={mode}" in choice.describe()


def test_fallback_names_the_seccomp_profile() -> None:
    assert "deploy/chrome-seccomp.json" in sandbox_choice("auto", euid=1000, probe=_refused).reason


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        sandbox_choice("maybe", euid=1000, probe=_fine)


def test_setting_accepts_three_values_and_defaults_to_auto() -> None:
    assert Settings.from_env({}).chrome_sandbox == "auto"
    for mode in ("auto", "on", "off"):
        assert Settings.from_env({"WAQ_CHROME_SANDBOX": mode}).chrome_sandbox == mode
    with pytest.raises(ConfigError, match="WAQ_CHROME_SANDBOX"):
        Settings.from_env({"WAQ_CHROME_SANDBOX": "yes"})


def test_unusable_reason_blames_the_sandbox_only_with_a_cause() -> None:
    on = sandbox_choice("on", euid=1000, probe=_unreached)
    assert unusable_reason(on, euid=0, probe=_unreached) == f"{UNUSABLE}: running as root (WAQ_CHROME_SANDBOX=on)"
    assert NO_USERNS in unusable_reason(on, euid=1000, probe=_refused)
    assert unusable_reason(on, euid=1000, probe=_fine) is None  # Chrome failed for another reason
    off = sandbox_choice("off", euid=1000, probe=_unreached)
    assert unusable_reason(off, euid=0, probe=_unreached) is None


def test_the_hint_for_an_unusable_sandbox() -> None:
    reason = f"Chrome did not start: {UNUSABLE}: running as root (WAQ_CHROME_SANDBOX=on); Message: session not created"
    hint = error_hint(reason, url="https://web.whatsapp.com")
    assert "WAQ_CHROME_SANDBOX" in hint and "deploy/chrome-seccomp.json" in hint


def test_probe_matches_the_kernel_here() -> None:
    """The real probe (a child process) against `unshare` from util-linux: both see the same kernel and filter."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    sandbox.userns_problem.cache_clear()
    problem = sandbox.userns_problem()
    reference = subprocess.run(["unshare", "--user", "--pid", "--net", "--fork", "true"], capture_output=True,
                               check=False)
    assert (problem is None) == (reference.returncode == 0), (problem, reference.stderr)
