"""absl trainers: train, evaluate and predict with the frozen-backbone models
and ugriz_cnn (trained from scratch on the datasets' native input).

Everything a run produces goes under its `--workdir`:

  run_config.json    the flags of the run (predict and evaluate read it)
  checkpoints/       per-stage weights, optimizer state and history (resume):
                     head/ and fine_tune/, or model/ for ugriz_cnn
  features/          cached backbone embeddings per split, keyed by
                     dataset + model + weights
  logs/              TensorBoard (when the tensorboard package is installed)
  model.keras        the full model: images [0, 255] (or the native input,
                     run_config.json 'input') -> class probabilities
  metrics.json       accuracy, macro-F1, per-class precision/recall/F1,
                     confusion matrices, epochs, wall time, images/s, flags
  history.png        accuracy and loss per epoch, train vs validation
  confusion.png      confusion matrices
"""
