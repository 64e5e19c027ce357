"""Progress bars that suit where they are shown.

On a terminal, :func:`progress_bar` is tqdm's bar. When stderr is not a terminal (a log file,
make's output, a cluster job), a redrawn bar would write a carriage-return redraw many times
a second into the file; there :func:`progress_bar` instead logs one plain line at most every
:data:`LOG_INTERVAL` seconds, e.g. ``DAS cells:  34% 12/35 [00:40<01:16, 3.33s/cell]``, and
a last line when a bar that is kept (``leave``, tqdm's default) closes. A bar that ends
within the interval and is not kept writes nothing.

    from dasgraph.progress import progress_bar
    for cell in progress_bar(cells, desc="graphs", unit="graph"):
        ...
"""
from __future__ import annotations

import logging
import sys

from tqdm import std

log = logging.getLogger("dasgraph.progress")

LOG_INTERVAL = 10.0       # seconds between two progress lines in a log


def on_terminal(stream=None) -> bool:
    """True when ``stream`` (default stderr, where tqdm draws) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):          # no stream, or a closed one
        return False


class _LogLines:
    """A file for tqdm that turns each redraw into one log line (blank clears are dropped)."""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            log.info("%s", line)

    def flush(self) -> None:
        pass


class LoggedBar(std.tqdm):
    """tqdm that logs a line at most every ``interval`` seconds instead of redrawing."""

    def __init__(self, *args, interval: float = LOG_INTERVAL, **kwargs):
        kwargs.update(file=_LogLines(), mininterval=interval, maxinterval=interval,
                      delay=interval, miniters=1, ascii=True, dynamic_ncols=False,
                      ncols=0)        # ncols 0: the counts, times and rate, no bar
        super().__init__(*args, **kwargs)

    # tqdm redraws at once on a new postfix or description: here that waits for the next line.
    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s="", refresh=True) -> None:
        super().set_postfix_str(s, refresh=False)

    def set_description(self, desc=None, refresh=True) -> None:
        super().set_description(desc, refresh=False)

    def moveto(self, n) -> None:
        pass        # one line per report: no cursor moves for nested bars

    def close(self) -> None:
        # A kept bar says it finished, once: after a last line of its own if it showed none
        # yet, not again if its last line already has the final count.
        if not self.disable and self.leave and hasattr(self, "last_print_t"):
            if self.last_print_t < self.start_t + self.delay:
                self.last_print_t = self.start_t + self.delay
            elif self.last_print_n == self.n:
                self.leave = False
        super().close()


def progress_bar(iterable=None, *, interval: float = LOG_INTERVAL, **kwargs):
    """tqdm's bar on a terminal, else a :class:`LoggedBar`; takes tqdm's arguments."""
    if on_terminal():
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    return LoggedBar(iterable, interval=interval, **kwargs)
