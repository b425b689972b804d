"""Inference over many rows, in one place: fixed-size chunks inside row blocks.

Two promises meet here. Bit-identical results: a row goes through the network in
a chunk of exactly the same shape however it is batched (torch picks matrix
kernels by shape, and on the CPU a 1-row and a 1000-row matmul round
differently), so a row's result never depends on the other rows of the call.
Flat memory: rows become tensors one block at a time, and results are written
into a preallocated output, so memory beyond the output does not grow with the
number of rows. A non-finite result for finite input is a ``ValueError`` that
names the row.

Knows torch and numpy; the estimator passes in the function to apply and how to
turn a block of rows into a tensor.
"""

import numpy as np
import torch

from ._progress import block_bar

# Rows per inference chunk for one forward pass per row (encoding, decoding).
CHUNK_ROWS = 256
# Decoder rows per importance-sampling chunk: rows x samples stays below this.
_CHUNK_DECODER_ROWS = 16384
# The same for a conv network, whose decoder holds a few hundred times a dense
# decoder's activations per row (64 x 14 x 14 floats in one layer for MNIST):
# 16,384 rows were 1.6 GB per layer, freshly mapped for every chunk, and scoring
# spent half its CPU time in the kernel's page faults. 256 rows keep a layer's
# activations within the caches; fewer rows per chunk cost no arithmetic, since
# every row has its own draws (benchmarks/results_conv_cost.md).
CONV_CHUNK_DECODER_ROWS = 256
# Rows converted to tensors at a time: bounds memory beyond the output. Blocks are
# whole multiples of the chunk size, so results do not depend on it.
BLOCK_ROWS = 8192


def importance_chunk_rows(n_samples, decoder_rows=_CHUNK_DECODER_ROWS):
    """Rows per chunk when each row is decoded ``n_samples`` times.

    ``rows * n_samples`` stays within ``decoder_rows`` (one row when a row's
    draws alone exceed it).
    """
    rows = max(1, decoder_rows // n_samples)
    # A multiple of 64 rows: in a chunk of, say, 327 rows the last few go through
    # the matmul's remainder kernels and round differently from the same row
    # placed earlier, which breaks bit-identical scores across batches (16 was
    # not enough for rows * n_samples decoder rows at many n_samples). Below 64
    # rows, a power of two, which divides the kernels' blocks as well.
    if rows >= 64:
        return rows - rows % 64
    return 1 << (rows.bit_length() - 1)


@torch.no_grad()
def map_in_fixed_chunks(function, x, chunk_rows):
    """Apply ``function`` to the tensor ``x`` in chunks of exactly ``chunk_rows`` rows.

    The last chunk is padded with zero rows and the padding's output dropped.
    """
    outputs = []
    for start in range(0, x.shape[0], chunk_rows):
        chunk = x[start : start + chunk_rows]
        n_rows = chunk.shape[0]
        if n_rows < chunk_rows:
            padding = chunk.new_zeros((chunk_rows - n_rows,) + chunk.shape[1:])
            chunk = torch.cat([chunk, padding])
        outputs.append(function(chunk)[:n_rows])
    return torch.cat(outputs)


def map_rows(function, X, to_tensor, chunk_rows, *, input_name, owner, dtype=np.float64,
             finish=None, verbose=0):
    """``function`` of every row of the array ``X``, as a numpy array.

    Parameters
    ----------
    function : callable
        Maps a tensor of ``chunk_rows`` rows to a tensor with one result per row.
    X : ndarray of shape (n_rows, n_columns)
        Validated rows (data or latent codes).
    to_tensor : callable
        Turns a block of rows of ``X`` into the tensor ``function`` reads.
    chunk_rows : int
        Rows per forward pass; every chunk is padded to this size.
    input_name, owner : str
        Name of the input and of the estimator, for error messages.
    dtype : numpy dtype, default=np.float64
        dtype of the output.
    finish : callable or None, default=None
        Applied to each block's results (a numpy array) before they are written
        to the output, so that post-processing needs memory for one block only.
    verbose : int, default=0
        1 shows a progress bar over the blocks of a call that has several.

    Raises
    ------
    ValueError
        If ``function`` gives NaN or infinity for a row, naming the row.
    """
    block_rows = chunk_rows * max(1, BLOCK_ROWS // chunk_rows)
    bar = block_bar(verbose, -(-X.shape[0] // block_rows), owner)
    try:
        return _map_blocks(function, X, to_tensor, chunk_rows, block_rows, input_name,
                           owner, dtype, finish, bar)
    finally:
        if bar is not None:
            bar.close()


def _map_blocks(function, X, to_tensor, chunk_rows, block_rows, input_name, owner, dtype,
                finish, bar):
    output = None
    for start in range(0, X.shape[0], block_rows):
        rows = slice(start, min(start + block_rows, X.shape[0]))
        block = X[rows]
        values = map_in_fixed_chunks(function, to_tensor(block), chunk_rows)
        if not torch.isfinite(values).all():
            _raise_non_finite(values, block, rows.start, input_name, owner)
        values = values.cpu().numpy()
        if finish is not None:
            values = finish(values)
        if output is None:
            output = np.empty((X.shape[0],) + tuple(values.shape[1:]), dtype=dtype)
        output[rows] = values
        if bar is not None:
            bar.update(1)
    return output


def _raise_non_finite(values, block, start, input_name, owner):
    bad = ~torch.isfinite(values.reshape(values.shape[0], -1)).all(dim=1)
    row = int(torch.nonzero(bad)[0, 0])
    largest = float(np.max(np.abs(block[row])))
    raise ValueError(
        f"{owner} computed NaN or infinite values for row {start + row} of "
        f"{input_name} (largest absolute value {largest:.3g}): the row lies too far "
        "outside the training data for the network's float32 arithmetic. Clip or "
        "rescale it to the range the model was fitted on."
    )
