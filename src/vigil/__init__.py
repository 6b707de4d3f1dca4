"""vigil: a reliability control plane.

The library works without the CLI: load a spec with :func:`vigil.spec.load_spec`, open a store
with :func:`vigil.store.open_store`, evaluate SLOs with :func:`vigil.slo.evaluate.evaluate_slos`
and ask the deploy gate with :func:`vigil.deploy.gate.decide`.
"""

__version__ = "0.1.0"
