"""Serve a folder of sky viewer pages on this machine: `python scripts/serve.py OUT`, then open the URL.

The pages that predict_sky.py and the demo report write (OUT/index.html, OUT/NAME.html) show the sky
with Aladin Lite, which browsers load only over http. This starts a static server bound to 127.0.0.1
and prints the addresses; any other static server works too (`python -m http.server` in OUT).
docs/viewer.md has the story.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from util.errors import exit_on_user_error  # noqa: E402

VIEWER_MARK = "skytrans-viewer-config"


def viewer_pages(root: Path, limit: int = 20) -> list[str]:
    """Pages of the folder (and one level down) that hold a sky viewer, index.html first."""
    found = []
    for page in sorted(root.glob("*.html")) + sorted(root.glob("*/*.html")):
        try:
            if VIEWER_MARK in page.read_text(errors="replace")[:200_000]:
                found.append(page.relative_to(root).as_posix())
        except OSError:
            continue
    found.sort(key=lambda p: (p != "index.html", p.count("/"), p))
    return found[:limit]


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    from util.cli import ArgumentParser
    from util.static_server import HOST, make_server

    parser = ArgumentParser(prog="serve.py", description="Serve a folder of sky viewer pages on " + HOST)
    parser.add_argument("folder", help="the folder to serve (predict_sky.py's --out, runs/ablation/report, ...)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--log", action="store_true", help="print every request")
    args = parser.parse_args(argv)
    root = Path(args.folder)
    server = make_server(root, args.port, log=(lambda line: print(line, file=sys.stderr)) if args.log else None)
    base = f"http://{HOST}:{server.server_port}/"
    pages = viewer_pages(root)
    print(f"serving {root} at {base} (this machine only; Ctrl-C stops)", flush=True)
    for page in pages:
        print(f"  {base}{'' if page == 'index.html' else page}", flush=True)
    if not pages:
        print("  (no viewer page found in this folder: predict_sky.py --region writes OUT/index.html)", flush=True)
    # Ctrl-C stops it even when started from a process that ignores SIGINT (a child inherits that: nohup,
    # a test runner's workers), and so does SIGTERM
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
