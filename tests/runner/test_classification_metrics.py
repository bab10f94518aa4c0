"""Macro F1 (runner.classification_metrics), what classify and each multitask task report."""

import pytest
import torch

from runner.classification_metrics import macro_f1
from runner.evaluate import macro_f1 as macro_f1_of_evaluate


def test_macro_f1_is_the_unweighted_mean_of_per_class_f1():
    predictions = torch.tensor([0, 0, 1, 1])
    labels = torch.tensor([0, 1, 1, 1])
    # class 0: tp 1, fp 1, fn 0 -> 2/3; class 1: tp 2, fp 0, fn 1 -> 4/5; class 2: absent -> 0
    assert macro_f1(predictions, labels, 3) == pytest.approx((2 / 3 + 4 / 5 + 0) / 3)
    assert macro_f1(labels, labels, 2) == 1.0


def test_macro_f1_is_still_importable_from_runner_evaluate():
    assert macro_f1_of_evaluate is macro_f1
