"""Which torch device a model trains and runs on.

Two questions, answered here only: which device a ``device`` parameter means
(:func:`resolve_device`), and where a model recorded as fitted on some device can
run on this machine (:func:`usable_device`).
"""

import copy

import torch


def resolve_device(device):
    """The torch device for a ``device`` parameter ("auto": CUDA when available, else CPU).

    Raises
    ------
    ValueError
        If ``device`` names no torch device, names ``meta`` (which holds no
        data), or names a device this machine lacks.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(
            f"device={device!r} is not a torch device. Use 'auto', 'cpu', 'cuda' "
            "or 'cuda:N'."
        ) from error
    _refuse_meta(resolved, f"device={device!r}")
    if not is_available(resolved):
        raise ValueError(
            f"device={device!r} was requested but torch finds no such device here "
            f"(torch {torch.__version__}). Use device='auto' or device='cpu'."
        )
    return resolved


def is_available(device):
    """Whether ``device`` exists on this machine and can hold tensors."""
    if device.type == "cpu":
        return True
    if device.type == "meta":
        return False
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        return device.index is None or device.index < torch.cuda.device_count()
    try:  # any other backend: the only reliable test is to use it
        torch.empty(0, device=device)
    except Exception:  # each backend fails in its own way when it is absent
        return False
    return True


def usable_device(device):
    """``device`` when it exists here, else the CPU: where a fitted model runs.

    A model fitted on a GPU keeps ``device_`` as a record of where it was
    fitted; unpickled or loaded on a machine without that device, it runs on the
    CPU instead of failing.
    """
    return device if is_available(device) else torch.device("cpu")


def recorded_device(name):
    """The device a model file says the model was fitted on; ``meta`` and nonsense refused.

    Unlike :func:`resolve_device` it accepts devices missing on this machine: the
    model then runs on the CPU (see :func:`usable_device`).
    """
    if not isinstance(name, str):
        raise ValueError("device is not a string.")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"device={name!r} names no torch device.") from error
    _refuse_meta(device, f"device={name!r}")
    return device


def _refuse_meta(device, what):
    if device.type == "meta":
        raise ValueError(
            f"{what} holds no data, so no model can be fitted on it. Use 'auto', "
            "'cpu', 'cuda' or 'cuda:N'."
        )


def tensors_on_cpu(value):
    """``value`` (nested dicts, lists and tuples of tensors) with every tensor on the CPU.

    What is not a tensor is copied, so the result shares nothing mutable with
    ``value`` (an optimizer's state, say, which training changes in place).
    """
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: tensors_on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(tensors_on_cpu(item) for item in value)
    return copy.copy(value)
