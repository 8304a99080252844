"""Progress: a tqdm bar on a terminal, one line per stage in a log."""
import io

from tqdm import tqdm

from util.progress import StageLine, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_per_stage_and_no_redraws():
    log = io.StringIO()
    assert list(progress(range(3), desc="test images", unit="image", stream=log)) == [0, 1, 2]
    assert log.getvalue() == "test images: 3/3 image in 0 s\n"
    with progress(total=4, desc="epoch 1", unit="batch", stream=log, summary=False) as bar:
        bar.update(4)
    assert log.getvalue().count("\n") == 1  # the caller prints its own line per epoch
    quiet = progress(range(2), desc="other rank", enabled=False, stream=log)
    assert isinstance(quiet, StageLine) and list(quiet) == [0, 1] and log.getvalue().count("\n") == 1


def test_a_terminal_gets_a_tqdm_bar():
    screen = Terminal()
    bar = progress(range(2), desc="epochs", unit="epoch", stream=screen)
    assert isinstance(bar, tqdm)
    assert list(bar) == [0, 1] and "epochs: 100%" in screen.getvalue()
