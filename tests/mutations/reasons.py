"""Why a surviving mutant survives: rules over the lines it changes, checked in order.

A rule names a module (a path suffix, "" for any), a pattern searched in the original line
(`was`) and one in the mutated line (`now`), and the reason. tests/mutations/score.py writes
each survivor of `make mutation` with the first rule that matches it into
docs/mutation-survivors.md, or "not explained" where none does. A reason says why no test
can or should fail: the mutant is equivalent (the same results by another route), or the
change is to something no behaviour depends on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    module: str
    was: str
    now: str
    reason: str

    def matches(self, module: str, removed: str, added: str) -> bool:
        return (module.endswith(self.module) and re.search(self.was, removed) is not None
                and re.search(self.now, added) is not None)


NOT_EXPLAINED = "not explained"

RULES = [
    # --- any module -------------------------------------------------------------------
    Rule("", r"", r"np\.(empty|zeros)\([^()]*(\([^()]*\))?[^()]*,\s*(None)?\s*\)",
         "equivalent: a scratch or flag array made with numpy's default dtype (float64) "
         "instead of the declared one; its values are the same to the tests' tolerance"),
    Rule("cpu_costs.py", r"np\.asarray\([^()]*,", r"np\.asarray\([^()]*,\s*(None)?\s*\)",
         "equivalent: the layer indices are Python ints, numpy's default is already int64"),
    Rule("pareto.py", r"np\.(asarray|array)\(", r"",
         "equivalent: the points and the reference are already float64"),
    Rule("", r"dtype=(np|torch)\.|dtype=\w+\.dtype|device=|\.to\(",
         r"dtype=None|device=None|\.to\(None|, None\)|,\s*\)",
         "equivalent here: what is converted already has that dtype, or numpy's and torch's "
         "default is the same, and everything lies on the CPU; no GPU is lent to test a "
         "device"),
    Rule("", r"dtype=\w+\.dtype", r"^(?!.*dtype=)",
         "equivalent here: the default dtype (float32) is what the tests' tensors have; a "
         "float64 network would tell them apart"),
    Rule("split.py", r"mask\.to\(", r"",
         "equivalent here: the masks are float32 on the CPU, like the tests' weights; a "
         "GPU or float64 network would tell them apart, and no GPU is lent"),
    Rule("segregation.py", r"np\.argsort\(squared, axis=1, kind=\"stable\"\)", r"",
         "equivalent unless two neurons lie at exactly the same distance from a third "
         "(axis 1 is the last axis of the 2-D distances); real positions never tie"),
    Rule("", r"dim\(\) > 2", r"dim\(\) > 3",
         "equivalent: weights are 2-D (linear) or 4-D (convolution); > 2 and > 3 split "
         "them alike"),
    Rule("", r"layers\[-1\]\.weight\.device", r"",
         "equivalent: every layer of a network lies on one device"),
    Rule("", r"logger\.|log\.(info|warning|debug)", r"",
         "a log message's text or level; no behaviour depends on it"),
    # --- kernels ------------------------------------------------------------------------
    Rule("kernels.py", r"isinstance\(d, np\.float32\)", r"",
         "equivalent as Python: float32 takes libm's exp instead of the polynomial, equal "
         "within 1e-5 (compiled, numba's overload chooses and this line does not run)"),
    Rule("kernels.py", r"unused", r"",
         "equivalent: 2-D rows use no scratch array, so which one they are given does not "
         "matter"),
    Rule("", r"trans_mode|, mode,|kernels\.WRITE", r"\bNone\b|and False",
         "equivalent: a mode of None is not VALUE_ONLY, so gradients are computed as in "
         "WRITE; with a coefficient of 0 they are 0 and handed to no parameter"),
    Rule("", r"with_grads and prox_coef != 0", r"with_grads or",
         "equivalent: in VALUE_ONLY the proximity gradient lands in scratch sums that are "
         "not handed to any parameter"),
    # --- costs / cpu_costs --------------------------------------------------------------
    Rule("costs.py", r"_fused\(", r"",
         "equivalent on the CPU: the numba kernels and the torch ops give the same costs "
         "and gradients (tested against each other); the choice matters for speed and "
         "for CUDA tensors, which need a GPU to test"),
    Rule("costs.py", r"positions\[0\]\.new_zeros", r"",
         "equivalent: every layer's positions share one dtype and device"),
    Rule("costs.py", r"no_penalty", r"no_penalty = None|\(no_penalty\) and False",
         "equivalent: with alpha = beta = 0 the penalty is 0, so running its gradient pass "
         "changes no gradient (extra work only)"),
    Rule("cpu_costs.py", r"np\.empty\(\(0, 0, 0\)", r"",
         "equivalent: the placeholder of a layer without transport is never read"),
    Rule("cpu_costs.py", r"weights\[0\]\.(detach|dtype)", r"weights\[1\]",
         "equivalent: every layer has one dtype"),
    Rule("cpu_costs.py", r"self\._key: tuple = \(\)|self\._handed.*= \{\}", r"None",
         "equivalent: the first prepare() always rebuilds, and sets both"),
    Rule("cpu_costs.py", r"max\(work, default=0\)", r"default=1",
         "equivalent: work is empty only when no layer is costed, and then neither path "
         "runs a kernel"),
    # --- segregation --------------------------------------------------------------------
    Rule("segregation.py", r"np\.add\.at\(votes", r"\), 2\)",
         "equivalent: every neighbour's vote counts 2 instead of 1, the same argmax"),
    Rule("segregation.py", r"minlength=classes", r"",
         "equivalent: folds never exceed the smallest task's neuron count, so every "
         "every-folds-th slice of the sorted task codes holds every task"),
    # --- search config ------------------------------------------------------------------
    Rule("config.py", r"resources\.gpu > 1", r">= 1",
         "equivalent: gpu = 1 is a whole number, accepted either way"),
    Rule("config.py", r'c in "-_\."', r"XX-_\.XX",
         "equivalent: it adds 'X' to the allowed punctuation, and X is a letter already"),
    Rule("config.py", r'source_text: str = ""', r"",
         "the hash of a config built without its YAML text (the Python API); nothing "
         "compares it"),
    Rule("config.py", r"limit: int = 256", r"",
         "a cap on the corner combinations checked before Ray starts; no test space has "
         "more than 256"),
    # --- split --------------------------------------------------------------------------
    Rule("split.py", r"KMeans\(|_positions_assignment\(model, tasks, seed\)", r"",
         "KMeans' restarts and seed: on the tests' clearly separated clusters every run "
         "finds the same groups"),
    Rule("split.py", r"seed: int = 0", r"seed: int = 1",
         "not pinned: the test network has one uncertain neuron (kept with 5/6), kept under "
         "seed 0 and seed 1 alike, so the test that the default is seed 0 cannot tell 0 "
         "from 1"),
    Rule("split.py", r"masks_for\(context, chosen, recording, seed\)", r"",
         "not pinned: the tests call split() with the default seed (0) only, which is "
         "masks_for's default too"),
    # --- pareto -------------------------------------------------------------------------
    Rule("pareto.py", r"if height > 0", r">= 0",
         "equivalent: a slab of zero height adds zero volume"),
    Rule("pareto.py", r"if n <= 2", r"n < 2",
         "equivalent: both ends of a front are infinitely far from the rest, so two points "
         "get infinity either way"),
    Rule("pareto.py", r"dominated_by\[current\] = -1", r"",
         "equivalent: the 'taken' marker only has to stay non-zero; a point of an earlier "
         "front is never dominated by a later one, so its counter never returns to 0"),
    Rule("pareto.py", r"kind=", r"",
         "equivalent: the sort kind where tied points give the same order or volume"),
    # --- checkpoint ---------------------------------------------------------------------
    Rule("checkpoint.py", r"weights_only=True", r"weights_only=None|^(?!.*weights_only)",
         "equivalent with torch >= 2.6, whose torch.load defaults to weights_only=True: a "
         "pickle that would run code is refused either way (tested)"),
    Rule("checkpoint.py", r"map_location", r"",
         "equivalent on a CPU-only machine: tensors load onto the CPU either way"),
    Rule("checkpoint.py", r"mkdir\(", r"",
         "equivalent where the folder exists, as it does in every caller"),
    Rule("checkpoint.py", r"missing_ok", r"",
         "equivalent: the temporary file exists when it is removed"),
]


def reason_for(module: str, removed: str, added: str) -> str:
    """The reason of the first rule matching this change, or NOT_EXPLAINED."""
    for rule in RULES:
        if rule.matches(module, removed, added):
            return rule.reason
    return NOT_EXPLAINED
