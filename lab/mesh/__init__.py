"""An Istio-like mesh: routes simulated traffic by VirtualServices and exports Istio's metrics."""

from lab.mesh.engine import Mesh

__all__ = ["Mesh"]
