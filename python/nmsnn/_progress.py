"""Progress while fitting, as `nmsnn train` shows it: a line rewritten in place with the epoch,
its share done, the batch loss, samples/s and the time left (verbose=1), plus one line per epoch
(verbose=2). Written to stderr, as the CLI does; a notebook shows it under the cell."""
import sys
import time


class Progress:
    def __init__(self, verbose, regression, stream=None):
        self.verbose = int(verbose or 0)
        self.regression = regression
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self.last = 0.0
        self.open = False

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def batch(self, b):
        if self.verbose < 1:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and b["samples_done"] < b["samples"]:
            return
        self.last = now
        done = (b["epoch"] - 1 + b["samples_done"] / max(1, b["samples"])) / max(1, b["epochs"])
        elapsed = now - self.start
        eta = elapsed * (1 - done) / done if done > 0 else 0.0
        width = 20
        filled = int(width * b["samples_done"] / max(1, b["samples"]))
        bar = "#" * filled + "-" * (width - filled)
        self._write(f"\repoch {b['epoch']}/{b['epochs']} [{bar}] loss {b['loss']:.4f} "
                    f"{b['samples_per_second']:7.0f} samples/s, ETA {eta:5.1f} s ")
        self.open = True

    def epoch(self, e):
        if self.verbose < 2:
            return
        line = f"epoch {e['epoch']}/{e['epochs']}: lr {e['lr']:g}, train loss {e['train_loss']:.4f}"
        if not self.regression:
            line += f" acc {e['train_accuracy']:.4f}"
        line += f", {e['samples_per_second']:.0f} samples/s ({e['train_seconds']:.1f} s)"
        if e.get("evaluated"):
            line += f"; validation loss {e['validation_loss']:.4f}"
            if not self.regression:
                line += f" acc {e['validation_accuracy']:.4f}"
        self._write(("\r" if self.open else "") + line + " " * 10 + "\n")
        self.open = False

    def close(self, result=None):
        if self.verbose < 1:
            return
        if self.open:
            self._write("\n")
            self.open = False
        if result is not None:
            self._write(f"trained in {result['train_seconds']:.1f} s "
                        f"({result['samples_per_second']:.0f} samples/s)\n")
