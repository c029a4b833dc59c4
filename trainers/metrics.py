"""Classification metrics in pure numpy: accuracy, macro-F1, per-class scores.

`accuracy_in_bins` breaks accuracy down by a value such as the r magnitude
(with the count and binomial standard error of each bin).

`predict_labels` runs a model over batches of (inputs, one-hot labels); it
needs only the model's predict_on_batch and the batches' .numpy().

A class nobody predicted has precision 0 (and a class with no examples recall
0), the usual convention, so macro averages never divide by zero.
"""

from typing import Any, Iterable, Sequence

import numpy as np


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int],
                     num_classes: int) -> np.ndarray:
  """int64 [num_classes, num_classes]: rows true class, columns predicted."""
  labels = np.asarray(labels, np.int64).reshape(-1)
  predictions = np.asarray(predictions, np.int64).reshape(-1)
  if labels.shape != predictions.shape:
    raise ValueError(
        f'{labels.size} labels but {predictions.size} predictions')
  for name, values in (('label', labels), ('prediction', predictions)):
    if values.size and (values.min() < 0 or values.max() >= num_classes):
      raise ValueError(f'{name} outside 0..{num_classes - 1}')
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (labels, predictions), 1)
  return matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
  numerator = numerator.astype(np.float64)
  safe = np.where(denominator > 0, denominator, 1)
  return np.where(denominator > 0, numerator / safe, 0.0)


def classification_report(labels: Sequence[int], predictions: Sequence[int],
                          class_names: Sequence[str]) -> dict[str, Any]:
  """accuracy, macro_f1, per-class precision/recall/f1/support, confusion.

  macro_f1 averages the classes that occur in the labels or the predictions
  (as scikit-learn's f1_score does): a class that a dataset lacks and the
  model never predicts (QSO in a STAR/GALAXY set) is no error, not an F1 of 0.
  Plain Python numbers and lists, ready for json.dump.
  """
  matrix = confusion_matrix(labels, predictions, len(class_names))
  true_positive = np.diag(matrix)
  predicted = matrix.sum(axis=0)
  support = matrix.sum(axis=1)
  precision = _ratio(true_positive, predicted)
  recall = _ratio(true_positive, support)
  f1 = _ratio(2 * precision * recall, precision + recall)
  total = int(matrix.sum())
  present = (support + predicted) > 0
  return {
      'num_examples': total,
      'accuracy': float(true_positive.sum() / total) if total else 0.0,
      'macro_f1': float(f1[present].mean()) if present.any() else 0.0,
      'per_class': {
          name: {'precision': float(precision[i]), 'recall': float(recall[i]),
                 'f1': float(f1[i]), 'support': int(support[i])}
          for i, name in enumerate(class_names)
      },
      'class_names': list(class_names),
      'confusion_matrix': matrix.tolist(),
  }


# Bins of the catalogue r magnitude (label, low, high): where the
# spectroscopic training samples thin out (few objects fainter than 21, none
# fainter than 22 in the bundled catalogue's dense fields).
R_MAG_BINS = (('r < 19', -np.inf, 19.0), ('19-21', 19.0, 21.0),
              ('21-22', 21.0, 22.0), ('r > 22', 22.0, np.inf))


def accuracy_in_bins(truth: Sequence[int], predicted: Sequence[int],
                     values: Sequence[float],
                     bins: Sequence[tuple[str, float, float]]
                     ) -> dict[str, dict[str, Any]]:
  """{label: {'n', 'accuracy', 'stderr'}} of the objects with low <= value < high.

  accuracy and stderr (binomial, sqrt(p (1 - p) / n)) are None in an empty
  bin; a NaN value falls in no bin.
  """
  truth, predicted = np.asarray(truth), np.asarray(predicted)
  values = np.asarray(values, np.float64)
  if not truth.shape == predicted.shape == values.shape:
    raise ValueError(f'{truth.size} labels, {predicted.size} predictions, '
                     f'{values.size} values')
  cells = {}
  for label, low, high in bins:
    chosen = (values >= low) & (values < high)
    n = int(chosen.sum())
    p = float(np.mean(truth[chosen] == predicted[chosen])) if n else None
    cells[label] = {'n': n, 'accuracy': p,
                    'stderr': None if p is None else float(np.sqrt(p * (1 - p) / n))}
  return cells


def predict_labels(model, batches: Iterable[tuple[Any, Any]]
                   ) -> tuple[np.ndarray, np.ndarray]:
  """(true labels, predicted labels) over batches of (inputs, one-hot)."""
  truth, predicted = [], []
  for inputs, one_hot in batches:
    probabilities = model.predict_on_batch(inputs)
    truth.append(np.argmax(one_hot.numpy(), axis=-1))
    predicted.append(np.argmax(probabilities, axis=-1))
  return np.concatenate(truth), np.concatenate(predicted)
