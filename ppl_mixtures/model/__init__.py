"""The model layer: the spec, the numpy density, transforms, exact evidence (numpy/scipy only;
PyTensor is imported lazily where a graph is built)."""
