"""How fast a sky viewer page shows the sky in Debian's headless Chromium, and a screenshot of it.

    python scripts/bench_viewer.py runs/gc_ks --runs 3 [--page index.html] [--screenshot docs/viewer.png]

Each run opens the page in a fresh browser context (cold cache) from a server on 127.0.0.1 and reports,
from the page's own clock: the load event, the first frame where the generated band shows (the viewer
polls its canvas), every layer ready; and the requests made (all must go to that server). Software WebGL
(SwiftShader) on the CPU: a desktop browser with a GPU draws faster. docs/viewer.md has the figures.
"""
from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from util.errors import UserError, exit_on_user_error  # noqa: E402


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    from util.cli import ArgumentParser
    from util.headless import browser_missing, chromium, open_page
    from util.static_server import start_in_background

    parser = ArgumentParser(prog="bench_viewer.py", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder with a viewer page (predict_sky.py --out, a report's sky/)")
    parser.add_argument("--page", default="index.html")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=760)
    parser.add_argument("--screenshot", help="PNG of the page after the last run")
    parser.add_argument("--layer", help="for the screenshot: the layer drawn over the generated band (its id)")
    parser.add_argument("--opacity", type=float, default=100.0, help="for the screenshot: that layer's opacity, %%")
    parser.add_argument("--fov", type=float, help="for the screenshot: field of view, deg")
    parser.add_argument("--at", type=float, nargs=2, metavar=("RA", "DEC"), help="for the screenshot: centre")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        raise UserError(missing)
    if not (Path(args.folder) / args.page).is_file():
        raise UserError(f"{Path(args.folder) / args.page}: no such page (predict_sky.py --region writes index.html)")
    server, base = start_in_background(args.folder)
    rows = []
    print(f"{base}{args.page} in headless Chromium (SwiftShader), {args.runs} cold loads; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    print("run  load event  first sky  (after load)  all layers  requests  elsewhere")
    with chromium() as browser:
        for run in range(1, args.runs + 1):
            load = open_page(browser, base + args.page, args.width, args.height)
            state = load.wait("ready", 120)
            if state["state"] != "ready":
                raise UserError(f"the page did not get ready in 120 s: {state} {load.console[-3:]}")
            t = state["timings"]
            foreign = [u for _, u, _ in load.requests if not u.startswith((base, "blob:", "data:"))]
            rows.append((state["load"] / 1000, t["firstSky"] / 1000, (t["firstSky"] - state["load"]) / 1000,
                         t["ready"] / 1000))
            print(f"{run:3d}  {rows[-1][0]:9.2f}s  {rows[-1][1]:8.2f}s  {rows[-1][2]:11.2f}s  {rows[-1][3]:9.2f}s  "
                  f"{len(load.requests):8d}  {len(foreign):9d}")
            if run < args.runs or not args.screenshot:
                load.page.close()
        print("median  " + "  ".join(f"{statistics.median(r[k] for r in rows):.2f}s" for k in range(4))
              + "  (load event, first sky, first sky after load, all layers; s after navigation start)")
        if args.screenshot:
            page = load.page
            if args.at or args.fov:
                view = page.evaluate("() => { const a = window.skytransViewer.aladin;"
                                     " return [...a.getRaDec(), a.getFov()[0]]; }")
                ra, dec = args.at or view[:2]
                page.evaluate(f"() => {{ const a = window.skytransViewer.aladin; a.gotoRaDec({ra}, {dec});"
                              f" a.setFoV({args.fov or view[2]}); }}")
            if args.layer:
                page.click(f"#skytrans-top-{args.layer}")
                page.evaluate(f"() => {{ const s = document.getElementById('skytrans-opacity');"
                              f" s.value = {args.opacity}; s.dispatchEvent(new Event('input')); }}")
            load.settle(quiet_s=1.5)
            page.wait_for_timeout(4000)  # tiles fetched are still being read into the GPU for a moment
            for step in range(2):
                page.mouse.move(args.width * 0.35 + step, args.height * 0.45 + step)
                page.wait_for_timeout(500)
            from io import BytesIO

            from PIL import Image

            shot = Image.open(BytesIO(page.screenshot())).convert("RGB")
            shot.quantize(256).save(args.screenshot, optimize=True)  # a palette PNG: two thirds the bytes
            print(f"wrote {args.screenshot}")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
