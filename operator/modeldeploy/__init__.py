"""modeldeploy: a Kubernetes operator that ships ONNX models as analysed canaries.

Layers (kept honest by the import contract in pyproject.toml):
``core`` is pure logic, ``adapters`` talk to the outside world, ``handlers``
wire kopf events to both.
"""

__version__ = "0.1.0"
