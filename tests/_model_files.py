"""Reading and rewriting model files, for the tests that craft bad ones."""

import json

from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from skvae._persistence import _checksum


def read_model_file(path):
    """The JSON document and the weights of a model file."""
    with safe_open(path, framework="pt") as file:
        metadata = file.metadata()
        weights = {name: file.get_tensor(name) for name in file.keys()}
    return json.loads(metadata["skvae"]), weights


def write_model_file(path, content, weights):
    """Write a model file holding ``content`` and ``weights``, with a valid checksum."""
    document = json.dumps(content)
    path.write_bytes(safetensors_bytes(
        weights, metadata={"skvae": document, "skvae.sha256": _checksum(document, weights)}))
