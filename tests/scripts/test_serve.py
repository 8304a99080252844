"""scripts/serve.py: a static server of a viewer folder on 127.0.0.1 that prints where to look."""
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "serve.py"


def serve(*args, ignoring_sigint: bool = False):
    """serve.py as a child; ignoring_sigint: started with SIGINT ignored, as under nohup or a test runner's
    worker (the child inherits it: Ctrl-C did not stop the server there)."""
    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ignore_sigint if ignoring_sigint else None)


def test_serves_the_folder_on_localhost_and_lists_its_pages(tmp_path):
    (tmp_path / "index.html").write_text("<script id='skytrans-viewer-config'></script>")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "one.html").write_text("<script id='skytrans-viewer-config'></script>")
    (tmp_path / "plain.html").write_text("no viewer here")
    (tmp_path / "viewer").mkdir()
    (tmp_path / "viewer" / "skytrans-viewer.js").write_text("export {};")
    child = serve(tmp_path, "--port", "0", ignoring_sigint=True)
    try:
        first = child.stdout.readline()
        assert first.startswith(f"serving {tmp_path} at http://127.0.0.1:"), first
        base = first.split(" at ")[1].split()[0]
        pages = [child.stdout.readline().strip() for _ in range(2)]
        assert pages == [base, base + "sub/one.html"]
        with urllib.request.urlopen(base) as response:
            assert b"skytrans-viewer-config" in response.read()
        with urllib.request.urlopen(base + "viewer/skytrans-viewer.js") as response:
            assert response.headers["Content-Type"].startswith("text/javascript")  # a module browsers accept
    finally:
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
    assert child.returncode == 0, err


def test_bad_folder_and_busy_port_are_one_line_errors(tmp_path):
    child = serve(tmp_path / "missing")
    _, err = child.communicate(timeout=60)
    assert child.returncode == 2
    assert err.strip().splitlines() == [f"error: {tmp_path / 'missing'}: no such folder to serve"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        child = serve(tmp_path, "--port", port)
        _, err = child.communicate(timeout=60)
    assert child.returncode == 2 and "in use" in err and len(err.strip().splitlines()) == 1, err
