"""README's "first ten minutes, by hand", walked as written.

The `sh` block after `<!-- manual-path -->` runs in `bash -e` in a fresh directory, with the
virtualenv's `bin` first on PATH and no `CLAIMSTREAM_*` variable of the caller. Two things differ
from a reader's terminal, neither in the commands themselves: the worker's web port 6066 becomes a
free one (in the text and as `CLAIMSTREAM_WEB_PORT`), since the machine is shared; and
`CLAIMSTREAM_TOPICS_FILE` names the checkout's topics.toml, since the block runs outside the
checkout's root, where the README runs it. Every process the block starts is in the session of
its bash, which is ended (SIGTERM, then SIGKILL) whatever happens; the local broker also dies with
its parent.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claimstream.devtools.localbroker import BrokerStartError, resolve_tansu_binary
from claimstream.devtools.subproc import free_port
from tests.ops.support import REPO
from tests.support.services import require_binary, unavailable

pytestmark = pytest.mark.integration

README = REPO / "README.md"
MARKER = "<!-- manual-path -->"
#: the whole walk; a reader's path takes a minute or two, a busy 2-core machine several
TIMEOUT = 600.0
#: what the block uses that other branches are building; until merged, the walk cannot run
NEEDED = (["produce", "--help"], ["validate", "--help"], ["alerts", "list", "--help"])
READMISSION_ALERT = "alr-2135aedd2f846c8ce5e8070f"


def manual_path() -> str:
    """The commands of the README's manual-path block, as written."""
    text = README.read_text(encoding="utf-8")
    after = text.split(MARKER, 1)[1]
    match = re.match(r"\s*```sh\n(.*?)\n```", after, re.DOTALL)
    assert match, f"no ```sh block right after {MARKER}"
    return match.group(1)


def _missing_pieces(claimstream: str) -> list[str]:
    missing = [
        " ".join(argv[:-1])
        for argv in NEEDED
        if subprocess.run([claimstream, *argv], capture_output=True, timeout=60).returncode
    ]
    openapi = REPO / "src" / "claimstream" / "stream" / "http" / "openapi.json"
    if '"/ready"' not in openapi.read_text(encoding="utf-8"):
        missing.append("GET /ready")
    return missing


def test_the_manual_path_block_is_a_bash_script_that_stops_what_it_starts() -> None:
    script = manual_path()
    assert "localhost:6066" in script  # the port the walk substitutes
    background = [ln for ln in script.splitlines() if re.search(r"[^&]&\s*(#.*)?$", ln)]
    assert len(background) == 2, background  # broker and worker in the background ...
    assert script.rstrip().splitlines()[-1].startswith("kill %2 %1")  # ... stopped at the end


def test_the_readme_manual_path_runs_as_written(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    claimstream = str(bin_dir / "claimstream")
    try:
        resolve_tansu_binary()
    except BrokerStartError as exc:
        unavailable(f"local broker unavailable: {exc}")
    require_binary("curl", "curl")
    missing = _missing_pieces(claimstream)
    if missing:
        pytest.skip(f"the manual path uses what is not built on this branch yet: {missing}")

    port = free_port()
    script = manual_path().replace("localhost:6066", f"localhost:{port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMSTREAM_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["CLAIMSTREAM_WEB_PORT"] = str(port)
    env["CLAIMSTREAM_TOPICS_FILE"] = str(REPO / "topics" / "topics.toml")
    transcript = tmp_path / "transcript.txt"
    with transcript.open("w", encoding="utf-8") as out:
        # a file, not a pipe: a background process still holding it cannot stall the test
        proc = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            out.write(f"\n(stopped after {TIMEOUT:.0f} s)\n")
        finally:
            _end_session(proc)
    output = transcript.read_text(encoding="utf-8", errors="replace")
    log = tmp_path / "worker.log"
    worker_log = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.exists() else ""
    context = f"--- output ---\n{output[-6000:]}\n--- worker.log (tail) ---\n{worker_log}"
    assert proc.returncode == 0, context
    assert READMISSION_ALERT in output, context  # `alerts show` found the alert the README names
    assert "P000500" in output, context  # and `freezes` the repeat-dispensing freeze


def _end_session(proc: subprocess.Popen[bytes]) -> None:
    """Stop bash and whatever it left running (one session, one process group): SIGTERM, up to
    15 s for a clean stop, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _signal_group(proc.pid, sig):
            break
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline and _signal_group(proc.pid, 0):
            proc.poll()  # reap bash itself, or its group never empties
            time.sleep(0.2)
    proc.wait(timeout=15.0)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False when nothing of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True
