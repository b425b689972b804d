"""Progress reports for long fits and scoring calls: a tqdm bar, or a line per epoch.

``verbose=1`` shows a bar (tqdm's ``auto`` bar: a terminal bar, or a widget in a
notebook) with the epoch, the loss, the validation score and the time left;
``verbose=2`` prints one line per epoch; ``verbose=0`` prints nothing. The bar
moves within an epoch too, a fraction of an epoch per minibatch, so a long epoch
(a conv network's can take 20 s) shows its progress and a time estimate from its
first steps.
"""

# Epochs shown to one decimal: the bar moves by fractions of an epoch.
_BAR_FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} epochs "
               "[{elapsed}<{remaining}{postfix}]")


class EpochReport:
    """Reports each finished epoch as ``verbose`` asks; a context manager.

    Parameters
    ----------
    verbose : int
        0: nothing; 1: a progress bar over ``max_iter`` epochs; 2 or more: a line
        per epoch on standard output.
    max_iter : int
        Epochs planned: the bar's length (training may stop earlier).
    n_batches : int, default=1
        Minibatches per epoch: each moves the bar by ``1 / n_batches`` epochs.
    """

    def __init__(self, verbose, max_iter, n_batches=1):
        self.verbose = int(verbose)
        self.bar = None
        self.n_batches = max(1, n_batches)
        self._epochs_done = 0
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_iter, desc="fit", unit="epoch", leave=True,
                            bar_format=_BAR_FORMAT)

    def step(self):
        """Report one finished minibatch."""
        if self.bar is not None:
            self.bar.update(1 / self.n_batches)

    def epoch(self, n_iter, loss, score=None):
        """Report epoch ``n_iter`` (counted over warm starts) with its loss and score."""
        if self.bar is not None:
            postfix = {"loss": f"{loss:.4g}"}
            if score is not None:
                postfix["validation ELBO"] = f"{score:.4g}"
            self.bar.set_postfix(postfix, refresh=False)
            # Whole epochs exactly, whatever the fractions added up to.
            self._epochs_done += 1
            self.bar.n = self._epochs_done
            self.bar.refresh()
        elif self.verbose >= 2:
            message = f"Epoch {n_iter}, loss = {loss:.4f}"
            if score is not None:
                message += f", validation ELBO = {score:.4f}"
            print(message)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.close()
        return False


def block_bar(verbose, n_blocks, description):
    """A tqdm bar over ``n_blocks`` blocks of rows for ``verbose=1``, else None.

    Only calls of more than one block get a bar: short calls stay silent.
    """
    if int(verbose) != 1 or n_blocks <= 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=n_blocks, desc=description, unit="block", leave=False)
