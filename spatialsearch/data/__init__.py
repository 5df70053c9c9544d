"""Datasets (sources: DataConfig -> per-task uint8 tensors) and input modes (modes: the
batches a trial trains on); formats, idx, own and shared read the files."""
