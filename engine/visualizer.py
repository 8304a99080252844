"""Training display: HTML page of visuals, loss_log.txt and loss_log.jsonl (+ loss-curve PNG),
visdom and wandb. Rank 0 alone gets a Visualizer; the other ranks get a SilentVisualizer.

visdom and wandb are optional and imported only when asked for (--display_id > 0, --use_wandb).
A missing visdom server costs one warning, never a hang or a crash: training matters more
than its display.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any, Mapping
from urllib.parse import urlparse

import numpy as np

from engine.context import RunContext
from engine.loss_plot import draw_loss_curves
from util import html, util
from util.loss_history import LOSS_LOG, LossRecord, append_record
from util.progress import write

VISDOM_TIMEOUT_S = 3.0
# loss_curves.png is redrawn from the whole loss_log.jsonl: 0.3 s for a short history, over 1 s
# for 100k records (measured, scripts/bench_train.py --overhead). Redrawing it at most every
# CURVE_INTERVAL_S, and no sooner than its last drawing time / CURVE_SHARE, keeps it under 0.5%
# of the run whatever the history's length.
CURVE_INTERVAL_S = 120.0
CURVE_SHARE = 0.005


def _warn(message: str) -> None:
    write(f"warning: {message}", file=sys.stderr)


def _plain_config(opt) -> dict:
    """Options as JSON-friendly values for wandb's config (devices etc. become strings)."""
    plain = (int, float, str, bool, type(None))
    return {k: v if isinstance(v, plain) or (isinstance(v, (list, tuple)) and all(isinstance(i, plain) for i in v))
            else str(v) for k, v in vars(opt).items()}


def _open_visdom(server: str, port: int, env: str, timeout_s: float):
    """A visdom client whose every request times out, or an exception when no server answers."""
    parsed = urlparse(server if "://" in server else f"http://{server}")
    host = parsed.hostname or "localhost"
    with socket.create_connection((host, port), timeout=timeout_s):
        pass  # fail fast (refused / unreachable) before visdom retries on its own
    import logging

    import requests
    import visdom

    class TimedVisdom(visdom.Visdom):
        @property
        def session(self):
            if self._session is None:
                self._session = requests.Session()
            return self._session

        def _handle_post(self, url, data=None):
            response = self.session.post(url, data=data or {}, timeout=timeout_s)
            response.raise_for_status()
            return response.text

    logger = logging.getLogger("visdom")
    level = logger.level
    logger.setLevel(logging.ERROR)  # silence "without the incoming socket..." chatter
    try:
        return TimedVisdom(server=server, port=port, env=env, raise_exceptions=True,
                           use_incoming_socket=False)
    finally:
        logger.setLevel(level)


def _pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """White-pad an HxWx3 image to height x width (visdom grids need equal sizes)."""
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    out[: image.shape[0], : image.shape[1]] = image
    return out


class Visualizer:
    """Upstream's Visualizer: display_current_results, plot_current_losses, print_current_losses."""

    def __init__(self, opt, ctx: RunContext | None = None):
        self.opt = opt
        self.rank = (ctx or RunContext()).rank
        self.display_id = int(getattr(opt, "display_id", 0) or 0)
        self.use_html = bool(getattr(opt, "isTrain", True)) and not getattr(opt, "no_html", False)
        self.win_size = getattr(opt, "display_winsize", 256)
        self.name = opt.name
        self.ncols = int(getattr(opt, "display_ncols", 4))
        self.use_wandb = bool(getattr(opt, "use_wandb", False))
        self.saved = False
        self.plot_data: dict[str, list] = {}
        self._vis = None
        self._visdom_off = self.display_id <= 0
        self._wandb_run = None
        self._wandb_step = 0
        self._last_curve_draw: float | None = None
        self._curve_wait_s = CURVE_INTERVAL_S
        self.expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.web_dir = os.path.join(self.expr_dir, "web")
        self.img_dir = os.path.join(self.web_dir, "images")
        self.log_name = os.path.join(self.expr_dir, "loss_log.txt")
        self.history_name = os.path.join(self.expr_dir, LOSS_LOG)
        self.curve_name = os.path.join(self.expr_dir, "loss_curves.png")
        if self.use_html:
            print(f"create web directory {self.web_dir}...")
            util.mkdirs([self.web_dir, self.img_dir])
        util.mkdirs(self.expr_dir)
        with open(self.log_name, "a", encoding="utf-8") as log_file:
            log_file.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")

    def reset(self) -> None:
        """Called at the start of each epoch: the next display saves its images to the HTML page."""
        self.saved = False

    # ---------------------------------------------------------------- visuals
    def display_current_results(self, visuals: Mapping[str, Any], epoch: int, total_iters: int | None = None,
                                save_result: bool = False) -> None:
        """Show one picture per visual (visdom grid, wandb) and save them to the HTML page once per epoch."""
        if isinstance(total_iters, bool):  # upstream 2022 call: (visuals, epoch, save_result)
            total_iters, save_result = None, total_iters
        save_html = self.use_html and (save_result or not self.saved)
        if not (save_html or self.use_wandb or not self._visdom_off):
            return  # nothing would show the pictures: skip converting them
        images = {label: util.tensor2im(tensor) for label, tensor in visuals.items()}
        if not self._visdom_off:
            self._display_visdom(images)
        if self.use_wandb:
            import wandb

            self._wandb_log({f"results/{label}": wandb.Image(image) for label, image in images.items()}, total_iters)
        if save_html:
            self.saved = True
            for label, image in images.items():
                util.save_image(image, os.path.join(self.img_dir, f"epoch{epoch:03d}_{label}.png"))
            self._write_html(epoch, list(images))

    def _write_html(self, epoch: int, labels: list[str]) -> None:
        """Rebuild web/index.html, newest epoch first, listing the images saved for each epoch."""
        webpage = html.HTML(self.web_dir, f"Experiment name = {self.name}", refresh=1)
        for n in range(epoch, 0, -1):
            names = [f"epoch{n:03d}_{label}.png" for label in labels]
            present = [(name, label) for name, label in zip(names, labels)
                       if os.path.exists(os.path.join(self.img_dir, name))]
            if not present:
                continue
            webpage.add_header(f"epoch [{n}]")
            webpage.add_images([p[0] for p in present], [p[1] for p in present], [p[0] for p in present],
                               width=self.win_size)
        webpage.save()

    # ---------------------------------------------------------------- visdom
    def _visdom(self):
        """The visdom client, connected on first use; None (after one warning) when unreachable."""
        if self._visdom_off:
            return None
        if self._vis is None:
            server, port = self.opt.display_server, int(self.opt.display_port)
            try:
                self._vis = _open_visdom(server, port, getattr(self.opt, "display_env", "main"), VISDOM_TIMEOUT_S)
            except Exception as err:  # any failure means: no display, training goes on
                self._disable_visdom(f"no visdom server at {server}:{port} ({type(err).__name__}); training "
                                     f"goes on without it (start one with `python -m visdom.server -port {port}`, "
                                     f"or pass --display_id 0)")
        return self._vis

    def _disable_visdom(self, message: str) -> None:
        self._visdom_off = True
        self._vis = None
        _warn(message)

    def _visdom_call(self, send) -> None:
        vis = self._visdom()
        if vis is None:
            return
        try:
            send(vis)
        except Exception as err:
            self._disable_visdom(f"visdom server stopped answering ({type(err).__name__}: {err}); "
                                 f"visdom display turned off, training goes on")

    def _display_visdom(self, images: dict[str, np.ndarray]) -> None:
        title = self.name
        if self.ncols > 0:
            ncols = min(self.ncols, len(images))
            height = max(im.shape[0] for im in images.values())
            width = max(im.shape[1] for im in images.values())
            grid = [_pad_to(im, height, width).transpose(2, 0, 1) for im in images.values()]
            blank = np.full((3, height, width), 255, dtype=np.uint8)
            grid += [blank] * (-len(grid) % ncols)
            labels = list(images)
            rows = ["".join(f"<td>{label}</td>" for label in labels[i:i + ncols]) for i in range(0, len(labels), ncols)]
            label_html = "<table style='border-collapse: separate; border-spacing: 4px 2px'>" + \
                "".join(f"<tr>{row}</tr>" for row in rows) + "</table>"

            def send(vis):
                vis.images(np.stack(grid), nrow=ncols, win=str(self.display_id + 1), padding=2,
                           opts=dict(title=title + " images"))
                vis.text(label_html, win=str(self.display_id + 2), opts=dict(title=title + " labels"))
        else:
            def send(vis):
                for idx, (label, image) in enumerate(images.items(), start=1):
                    vis.image(image.transpose(2, 0, 1), win=str(self.display_id + idx), opts=dict(title=label))
        self._visdom_call(send)

    # ---------------------------------------------------------------- losses
    def plot_current_losses(self, epoch: int, counter_ratio: float, losses: Mapping[str, float],
                            total_iters: int | None = None) -> None:
        """Loss line chart over epochs (visdom window --display_id); losses to wandb at step total_iters."""
        legend = list(losses)
        if self.plot_data.get("legend") != legend:
            self.plot_data = {"X": [], "Y": [], "legend": legend}
        self.plot_data["X"].append(epoch + counter_ratio)
        self.plot_data["Y"].append([float(losses[k]) for k in legend])
        if self.display_id > 0:
            x = np.stack([np.array(self.plot_data["X"])] * len(legend), 1)
            y = np.array(self.plot_data["Y"])
            self._visdom_call(lambda vis: vis.line(
                X=x, Y=y, win=str(self.display_id),
                opts=dict(title=self.name + " loss over time", legend=legend, xlabel="epoch", ylabel="loss")))
        if self.use_wandb:
            self._wandb_log({k: float(v) for k, v in losses.items()}, total_iters)

    def print_current_losses(self, epoch: int, iters: int, losses: Mapping[str, float],
                             t_comp: float, t_data: float, total_iters: int | None = None) -> str:
        """Print and log one loss line in upstream's 2025 format (loss_log.txt) and as a record of
        loss_log.jsonl, which the curves and reports read; refresh loss_curves.png now and then."""
        message = f"[Rank {self.rank}] (epoch: {epoch}, iters: {iters}, time: {t_comp:.3f}, data: {t_data:.3f}) "
        message += "".join(f", {k}: {float(v):.3f}" for k, v in losses.items())
        write(message)
        with open(self.log_name, "a", encoding="utf-8") as log_file:
            log_file.write(f"{message}\n\n")
        append_record(self.history_name, LossRecord(epoch, iters, {k: float(v) for k, v in losses.items()}, total_iters))
        now = time.monotonic()
        if self._last_curve_draw is None or now - self._last_curve_draw >= self._curve_wait_s:
            draw_loss_curves(self.history_name, self.curve_name)
            self._last_curve_draw = time.monotonic()
            self._curve_wait_s = max(CURVE_INTERVAL_S, (self._last_curve_draw - now) / CURVE_SHARE)
        return message

    # ---------------------------------------------------------------- wandb
    def _wandb_log(self, payload: dict, step: int | None) -> None:
        import wandb

        if self._wandb_run is None:
            self._wandb_run = wandb.run or wandb.init(
                project=getattr(self.opt, "wandb_project_name", "CycleGAN-and-pix2pix"),
                name=self.name, config=_plain_config(self.opt))
        self._wandb_step = max(self._wandb_step, int(step)) if step is not None else self._wandb_step
        self._wandb_run.log(payload, step=self._wandb_step)

    def close(self) -> None:
        """End of training: final loss curves, finish the wandb run (flushes offline files)."""
        draw_loss_curves(self.history_name, self.curve_name)
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None


class SilentVisualizer:
    """What ranks other than 0 get instead of a Visualizer: no files, no output."""

    def __init__(self, opt=None, ctx: RunContext | None = None):
        self.opt = opt

    def reset(self) -> None:
        pass

    def display_current_results(self, *args, **kwargs) -> None:
        pass

    def plot_current_losses(self, *args, **kwargs) -> None:
        pass

    def print_current_losses(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass
