"""Progress reports for long fits and scoring calls: a tqdm bar, or a line per epoch.

``verbose=1`` shows a bar (tqdm's ``auto`` bar: a terminal bar, or a widget in a
notebook) with the epoch, the loss, the validation score and the time left;
``verbose=2`` prints one line per epoch; ``verbose=0`` prints nothing.
"""


class EpochReport:
    """Reports each finished epoch as ``verbose`` asks; a context manager.

    Parameters
    ----------
    verbose : int
        0: nothing; 1: a progress bar over ``max_iter`` epochs; 2 or more: a line
        per epoch on standard output.
    max_iter : int
        Epochs planned: the bar's length (training may stop earlier).
    """

    def __init__(self, verbose, max_iter):
        self.verbose = int(verbose)
        self.bar = None
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_iter, desc="fit", unit="epoch", leave=True)

    def epoch(self, n_iter, loss, score=None):
        """Report epoch ``n_iter`` (counted over warm starts) with its loss and score."""
        if self.bar is not None:
            postfix = {"loss": f"{loss:.4g}"}
            if score is not None:
                postfix["validation ELBO"] = f"{score:.4g}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)
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
