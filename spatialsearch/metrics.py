"""Metric names: the one place they are spelled (logs, Ray reports, MLflow, checkpoints)."""

from __future__ import annotations

EPOCH = "epoch"
TRAIN_LOSS = "train_loss"              # mean total loss (task + costs) over the epoch's steps
TRAIN_TASK_LOSS = "train_task_loss"    # mean task cross-entropy over the epoch's steps
PROXIMITY = "proximity"                # mean Proximity over the epoch's steps (unscaled by alpha)
TRANSPORT = "transport"                # mean Transport over the epoch's steps (unscaled by beta)
VAL_LOSS = "val_loss"                  # task cross-entropy on the validation split
VAL_ACCURACY = "val_accuracy"          # mean over tasks of the per-task validation accuracy
VAL_ACCURACY_SE = "val_accuracy_se"    # its standard error: sqrt(sum_t p_t (1 - p_t) / n_t) / T
TEST_ACCURACY = "test_accuracy"        # the same on the test split, best checkpoint only
SEGREGATION = "segregation"            # mean over hidden layers (docs/reference.md, model 8)
SEGREGATION_SCORED = "segregation_layers_scored"  # hidden layers scored (others at chance)
MODULARITY = "modularity"              # mean modularity Q of the layer pairs' weight graphs
                                       # under the task partition (modularity.py)
EPOCH_SECONDS = "epoch_seconds"        # wall time of the epoch's training steps


TASK_ACCURACY_PREFIX = "val_accuracy_task"   # + task index
LAYER_SEGREGATION_PREFIX = "segregation_layer"  # + hidden layer index
MODULARITY_PREFIX = "modularity_layer"           # + k: Q of layer pair (k, k+1)
TASK_BALANCE_PREFIX = "task_balance_layer"       # + hidden layer index: smallest task's
                                                 # assigned neurons / largest's, in [0, 1]


def val_task_accuracy(task: int) -> str:
    """Validation accuracy of one task's head on its own samples."""
    return f"{TASK_ACCURACY_PREFIX}{task}"


def test_task_accuracy(task: int) -> str:
    return f"test_accuracy_task{task}"


def layer_segregation(layer: int) -> str:
    return f"{LAYER_SEGREGATION_PREFIX}{layer}"


def task_balance(layer: int) -> str:
    return f"{TASK_BALANCE_PREFIX}{layer}"


def layer_modularity(layer: int) -> str:
    return f"{MODULARITY_PREFIX}{layer}"
