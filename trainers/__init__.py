"""absl trainers: train, evaluate and predict with the frozen-backbone models.

Everything a run produces goes under its `--workdir`:

  run_config.json    the flags of the run (predict and evaluate read it)
  checkpoints/       per-stage weights, optimizer state and history (resume)
  features/          cached backbone embeddings per split, keyed by
                     dataset + model + weights
  logs/              TensorBoard (when the tensorboard package is installed)
  model.keras        the full model, images [0, 255] -> class probabilities
  metrics.json       accuracy, macro-F1, per-class precision/recall/F1,
                     confusion matrices, epochs, wall time, images/s, flags
  history.png        accuracy and loss per epoch, train vs validation
  confusion.png      confusion matrices
"""
