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
POSITIONS_SPLIT = "positions_split"    # the network cut by space alone: diagonal minus
                                       # off-diagonal accuracy of its regions (function_split)
POSITIONS_SPLIT_DIAGONAL = "positions_split_diagonal"   # each region on its own task
POSITIONS_SPLIT_OFF_DIAGONAL = "positions_split_off_diagonal"  # each region on the others
SELECTIVITY = "selectivity"            # mean per-neuron task preference from weight mass:
                                       # 0 none, 1 exclusive (selectivity.py)
EPOCH_SECONDS = "epoch_seconds"        # wall time of the epoch's training steps


TASK_ACCURACY_PREFIX = "val_accuracy_task"   # + task index
LAYER_SEGREGATION_PREFIX = "segregation_layer"  # + hidden layer index
MODULARITY_PREFIX = "modularity_layer"           # + k: Q of layer pair (k, k+1)
SELECTIVITY_PREFIX = "selectivity_layer"         # + hidden layer index
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


def layer_selectivity(layer: int) -> str:
    return f"{SELECTIVITY_PREFIX}{layer}"


def value_range(metric: str) -> tuple[float, float]:
    """[low, high] a reported metric can take: accuracies, segregations and selectivity in
    [0, 1]; modularity (Barber's Q) and the positions split (a difference of accuracies) in
    [-1, 1]; losses, costs and everything else >= 0."""
    if metric.startswith((VAL_ACCURACY, TEST_ACCURACY, SEGREGATION, SELECTIVITY)):
        return (0.0, 1.0)
    if metric.startswith((MODULARITY, POSITIONS_SPLIT)):
        return (-1.0, 1.0)
    return (0.0, float("inf"))
