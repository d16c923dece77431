"""Tests of the reference, the data split and the hidden checks (in-process, no sandbox).

Correct implementations in several styles must get full marks; each wrong implementation must
lose points on its question and get the expected diagnosis, leaving the other questions intact.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from adaline_kit import settings as grading_settings
from adaline_kit.assignments.adaline_autograd import CORPUS
from adaline_kit.assignments.adaline_autograd import data as lecture_data
from adaline_kit.assignments.adaline_autograd import reference
from adaline_kit.assignments.adaline_autograd.checks import (GRADERS, common, diagnoses,
                                                             grade_questions, inprocess, q1,
                                                             q2, runs, source_rules)
from adaline_kit.outcomes import ProbeFailure

PUBLISHED = [0.38849, 0.31679, 0.26379, 0.22463, 0.19527, 0.17307, 0.15629, 0.14352, 0.13360,
             0.12600, 0.12007, 0.11547, 0.11178, 0.10884, 0.10656, 0.10470, 0.10320, 0.10200,
             0.10105, 0.10025]


def code(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


# --- q1: Adaline1 with a hand-written backward -----------------------------------------------

def adaline1(backward_body: str, extra: str = "") -> str:
    """The given Adaline1 with ``backward_body`` (indented 8 spaces) as the student's backward."""
    return code('''
        class Adaline1():
            def __init__(self, num_features):
                self.num_features = num_features
                self.weight = torch.zeros(num_features, 1, dtype=torch.float)
                self.bias = torch.zeros(1, dtype=torch.float)

            def forward(self, x):
                netinputs = torch.add(torch.mm(x, self.weight), self.bias)
                activations = netinputs
                return activations.view(-1)

            def backward(self, x, yhat, y):
        ''') + textwrap.indent(code(backward_body), " " * 8) + extra


Q1_LECTURE = adaline1('''
    grad_loss_yhat = 2*(yhat - y)
    grad_yhat_weights = x
    grad_yhat_bias = 1.
    grad_loss_weights = torch.mm(grad_yhat_weights.t(), grad_loss_yhat.view(-1, 1)) / y.size(0)
    grad_loss_bias = torch.sum(grad_yhat_bias*grad_loss_yhat) / y.size(0)
    return (-1)*grad_loss_weights, (-1)*grad_loss_bias
''')

Q1_CORRECT = {
    "lecture": Q1_LECTURE,
    "matmul_T": adaline1('''
        err = (yhat - y).reshape(-1, 1)
        n = x.shape[0]
        return -2 * x.T @ err / n, -2 * err.sum(dim=0) / n
    '''),
    "loop": adaline1('''
        gw = torch.zeros(self.num_features, 1)
        gb = torch.zeros(1)
        for i in range(x.size(0)):
            e = float(yhat[i] - y[i])
            gw += 2 * e * x[i].view(-1, 1)
            gb += 2 * e
        return -gw / x.size(0), -gb / x.size(0)
    '''),
    "einsum": adaline1('''
        e = yhat - y
        gw = torch.einsum("nm,n->m", x, e).unsqueeze(1) * 2 / len(y)
        gb = (2 * e).mean().unsqueeze(0)
        return -gw, -gb
    '''),
    "float64": adaline1('''
        x64, e64 = x.double(), (yhat.double() - y.double())
        gw = 2.0 * torch.matmul(x64.t(), e64.view(-1, 1)) / y.numel()
        gb = 2.0 * e64.mean().view(1)
        return -gw, -gb
    '''),
    # The docstring defines yhat as forward(x): recomputing it is within the contract.
    "recomputes_forward": adaline1('''
        e = (self.forward(x) - y).view(-1, 1)
        return -2 * x.t() @ e / y.size(0), -(2 * e.sum() / y.size(0)).view(1)
    '''),
    # Mentioning requires_grad (reading it, or asking for False) is not using autograd.
    "mentions_requires_grad": adaline1('''
        assert not self.weight.requires_grad
        e = (yhat - y).view(-1, 1).detach().requires_grad_(False)
        gw = torch.zeros(self.num_features, 1, requires_grad=False)
        gw -= 2 * x.t() @ e / y.size(0)
        return gw, -(2 * e.sum() / y.size(0)).view(1)
    '''),
}

Q1_WRONG = {
    "sign_flip": ("sign_flipped", adaline1('''
        e = (yhat - y).view(-1, 1)
        return 2 * x.t() @ e / y.size(0), (2 * e.sum() / y.size(0)).view(1)
    ''')),
    "sum": ("sum_not_mean", adaline1('''
        e = (yhat - y).view(-1, 1)
        return -2 * x.t() @ e, -(2 * e.sum()).view(1)
    ''')),
    "no_factor_2": ("missing_factor_2", adaline1('''
        e = (yhat - y).view(-1, 1)
        return -x.t() @ e / y.size(0), -(e.sum() / y.size(0)).view(1)
    ''')),
    "bias_not_reduced": ("bias_not_reduced", adaline1('''
        e = (yhat - y).view(-1, 1)
        return -2 * x.t() @ e / y.size(0), -2 * (yhat - y) / y.size(0)
    ''')),
    "transposed": ("weight_transposed", adaline1('''
        e = (yhat - y).view(1, -1)
        return -2 * e @ x / y.size(0), -(2 * e.sum() / y.size(0)).view(1)
    ''')),
    "autograd": ("uses_autograd", adaline1('''
        out = yhat.detach().clone().requires_grad_(True)
        loss = torch.mean((out - y) ** 2)
        (grad_out,) = torch.autograd.grad(loss, out)
        return -x.t() @ grad_out.view(-1, 1), -grad_out.sum().view(1)
    ''')),
    "missing_two_over_n": ("missing_two_over_n", adaline1('''
        e = (yhat - y).view(-1, 1)
        return -x.t() @ e, -e.sum().view(1)
    ''')),
    "wrong_n": ("wrong_n", adaline1('''
        n = x.size(1)
        e = (yhat - y).view(-1, 1)
        return -2 * x.t() @ e / n, -(2 * e.sum() / n).view(1)
    ''')),
    "stub": ("stub_untouched", adaline1('''
        raise NotImplementedError
    ''')),
    "int_labels": ("integer_labels", adaline1('''
        n = y.size(0)
        xt = x.t()
        gw = 2 * (xt @ yhat.view(-1, 1) - xt @ y.view(-1, 1)) / n
        return -gw, -(2 * (yhat - y).sum() / n).view(1)
    ''')),
}

# --- q2: train_autograd with torch.autograd.grad ----------------------------------------------

Q2_LECTURE = code('''
    def train_autograd(model, x, y, num_epochs, learning_rate=0.01, seed=123, minibatch_size=10):
        cost = []
        torch.manual_seed(seed)
        for e in range(num_epochs):
            shuffle_idx = torch.randperm(y.size(0), dtype=torch.long)
            minibatches = torch.split(shuffle_idx, minibatch_size)
            for minibatch_idx in minibatches:
                yhat = model.forward(x[minibatch_idx])
                loss = loss_func(yhat, y[minibatch_idx])
                negative_grad_w = grad(loss, model.weight, retain_graph=True)[0] * (-1)
                negative_grad_b = grad(loss, model.bias)[0] * (-1)
                model.weight = model.weight + learning_rate * negative_grad_w
                model.bias = model.bias + learning_rate * negative_grad_b
            with torch.no_grad():
                yhat = model.forward(x)
                curr_loss = loss_func(yhat, y)
                cost.append(curr_loss)
        return cost
''')


def fill(template: str, **parts: str) -> str:
    """Replace each line holding only a placeholder NAME by ``parts[NAME]``, indented alike."""
    lines = []
    for line in code(template).splitlines():
        name = line.strip()
        if name in parts:
            indent = line[:len(line) - len(line.lstrip())]
            lines.extend(indent + part_line if part_line.strip() else ""
                         for part_line in code(parts[name]).splitlines())
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def train_autograd(step: str, *, seed_line="torch.manual_seed(seed)", epoch_seed="pass",
                   batches="torch.split(perm, minibatch_size)",
                   record="cost.append(loss_func(model.forward(x), y))", header="",
                   ret="return cost") -> str:
    """A train_autograd skeleton around ``step`` (the body of the minibatch loop)."""
    return code(header) + fill(f'''
        def train_autograd(model, x, y, num_epochs, learning_rate=0.01, seed=123,
                           minibatch_size=10):
            cost = []
            {seed_line}
            for epoch in range(num_epochs):
                {epoch_seed}
                perm = torch.randperm(y.size(0), dtype=torch.long)
                for idx in {batches}:
                    STEP
                with torch.no_grad():
                    {record}
            {ret}
    ''', STEP=step)


GRAD_STEP = '''
    loss = loss_func(model.forward(x[idx]), y[idx])
    gw, gb = grad(loss, [model.weight, model.bias])
    model.weight = model.weight - learning_rate * gw
    model.bias = model.bias - learning_rate * gb
'''

Q2_CORRECT = {
    "lecture": Q2_LECTURE,
    "one_grad_call": train_autograd(GRAD_STEP),
    "in_place_no_grad": train_autograd('''
        yhat = model.forward(x[idx])
        loss = torch.mean((yhat - y[idx]) ** 2)
        gw, gb = torch.autograd.grad(loss, (model.weight, model.bias))
        with torch.no_grad():
            model.weight += -learning_rate * gw
            model.bias -= learning_rate * gb
    '''),
    "alias_module": train_autograd('''
        loss = F.mse_loss(model.forward(x[idx]), y[idx].float())
        gw = ag.grad(loss, model.weight, retain_graph=True)[0]
        gb = ag.grad(loss, model.bias)[0]
        model.weight = (model.weight - learning_rate * gw).detach().requires_grad_(True)
        model.bias = (model.bias - learning_rate * gb).detach().requires_grad_(True)
    ''', header="import torch.autograd as ag",
        record="cost.append(float(loss_func(model.forward(x), y)))"),
    "alias_from_import_and_helper": train_autograd('''
        nw, nb = negative_gradients(model, x[idx], y[idx])
        model.weight = model.weight + learning_rate * nw
        model.bias = model.bias + learning_rate * nb
    ''', header='''
        from torch.autograd import grad as g

        def negative_gradients(model, xb, yb):
            loss = loss_func(model.forward(xb), yb)
            gw, gb = g(loss, [model.weight, model.bias])
            return -gw, -gb
    ''', record="cost.append(loss_func(model.forward(x), y).item())"),
}

Q2_WRONG = {
    "backward": ("uses_backward_not_grad", train_autograd('''
        loss = loss_func(model.forward(x[idx]), y[idx])
        loss.backward()
        with torch.no_grad():
            model.weight -= learning_rate * model.weight.grad
            model.bias -= learning_rate * model.bias.grad
            model.weight.grad.zero_()
            model.bias.grad.zero_()
    ''')),
    "ascending": ("ascending", train_autograd(GRAD_STEP.replace("- learning", "+ learning"))),
    "lr_ignored": ("learning_rate_ignored",
                   train_autograd(GRAD_STEP.replace("learning_rate", "0.01"))),
    "seed_each_epoch": ("seed_reset_each_epoch",
                        train_autograd(GRAD_STEP, seed_line="pass",
                                       epoch_seed="torch.manual_seed(seed)")),
    "full_batch": ("full_batch", train_autograd(GRAD_STEP, batches="[perm]")),
    "seed_ignored": ("seed_ignored", train_autograd(GRAD_STEP, seed_line="torch.manual_seed(123)")),
    "hardcoded": ("hardcoded_curve", train_autograd(GRAD_STEP, ret="return " + repr(PUBLISHED))),
    "never_changes": ("params_never_change", train_autograd('''
        loss = loss_func(model.forward(x[idx]), y[idx])
        gw, gb = grad(loss, [model.weight, model.bias])
        weight = model.weight - learning_rate * gw
        bias = model.bias - learning_rate * gb
    ''')),
    "per_minibatch": ("losses_per_minibatch", train_autograd(
        code(GRAD_STEP) + "cost.append(loss.detach())\n", record="pass")),
    "epochs_ignored": ("num_epochs_ignored",
                       train_autograd(GRAD_STEP).replace("range(num_epochs)", "range(20)")),
    # Logs the loss of the epoch's last minibatch (before its update), not the full-data loss.
    "last_minibatch": ("last_minibatch_loss",
                       train_autograd(GRAD_STEP, record="cost.append(loss.detach())")),
    "stub": ("stub_untouched", code('''
        def train_autograd(model, x, y, num_epochs, learning_rate=0.01, seed=123,
                           minibatch_size=10):
            raise NotImplementedError("train_autograd")
    ''')),
}

# --- q3: Adaline3 and train_nn ---------------------------------------------------------------

ADALINE3 = code('''
    class Adaline3(torch.nn.Module):
        def __init__(self, num_features):
            super(Adaline3, self).__init__()
            self.linear = torch.nn.Linear(num_features, 1)
            self.linear.weight.detach().zero_()
            self.linear.bias.detach().zero_()

        def forward(self, x):
            netinputs = self.linear(x)
            activations = netinputs
            return activations.view(-1)
''')


def train_nn(step: str, *, optimizer="torch.optim.SGD(model.parameters(), lr=learning_rate)",
             seed_line="torch.manual_seed(seed)", epoch_seed="pass",
             batches="torch.split(perm, minibatch_size)",
             record="cost.append(loss_func(model.forward(x), y))", ret="return cost") -> str:
    """A train_nn skeleton around ``step`` (the body of the minibatch loop)."""
    return fill(f'''
        def train_nn(model, x, y, num_epochs, learning_rate=0.01, seed=123, minibatch_size=10):
            cost = []
            {seed_line}
            optimizer = {optimizer}
            for epoch in range(num_epochs):
                {epoch_seed}
                perm = torch.randperm(y.size(0), dtype=torch.long)
                for idx in {batches}:
                    STEP
                with torch.no_grad():
                    {record}
            {ret}
    ''', STEP=step)


NN_STEP = '''
    yhat = model.forward(x[idx])
    loss = F.mse_loss(yhat, y[idx].float())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
'''

Q3_LECTURE = ADALINE3 + train_nn(NN_STEP)

Q3_CORRECT = {
    "lecture": Q3_LECTURE,
    "init_zeros_set_to_none_call": code('''
        from torch import nn, optim

        class Adaline3(nn.Module):
            def __init__(self, num_features):
                super().__init__()
                self.fc = nn.Linear(num_features, 1)
                nn.init.zeros_(self.fc.weight)
                nn.init.zeros_(self.fc.bias)

            def forward(self, x):
                return self.fc(x).flatten()
    ''') + train_nn('''
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x[idx]), y[idx].float())
        loss.backward()
        optimizer.step()
    ''', optimizer="optim.SGD(model.parameters(), lr=learning_rate)",
        record="cost.append(F.mse_loss(model(x), y.float()).item())"),
    "int_labels_promote": ADALINE3 + train_nn('''
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        model.zero_grad()
    '''),
    "no_grad_init_and_sgd_import": code('''
        from torch.optim import SGD

        class Adaline3(torch.nn.Module):
            def __init__(self, num_features):
                super().__init__()
                self.linear = torch.nn.Linear(num_features, 1)
                with torch.no_grad():
                    self.linear.weight.zero_()
                    self.linear.bias.fill_(0.0)

            def forward(self, x):
                return self.linear(x).squeeze(1)
    ''') + train_nn(NN_STEP, optimizer="SGD(model.parameters(), lr=learning_rate)"),
}

Q3_WRONG = {
    "no_zero_grad": ("gradients_accumulate",
                     ADALINE3 + train_nn(NN_STEP.replace("    optimizer.zero_grad()\n", ""))),
    "zero_grad_between": ("params_never_change", ADALINE3 + train_nn('''
        loss = F.mse_loss(model(x[idx]), y[idx].float())
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
    ''')),
    "random_init": ("random_init", "".join(
        line for line in ADALINE3.splitlines(keepends=True) if "zero_()" not in line)
        + train_nn(NN_STEP)),
    "adam": ("other_optimizer", ADALINE3 + train_nn(
        NN_STEP, optimizer="torch.optim.Adam(model.parameters(), lr=learning_rate)")),
    "output_n1": ("output_shape_n1", ADALINE3.replace("activations.view(-1)", "activations")
                  + train_nn(NN_STEP)),
    "full_batch": ("full_batch", ADALINE3 + train_nn(NN_STEP, batches="[perm]")),
    "minibatch_ignored": ("minibatch_size_ignored", ADALINE3 + train_nn(
        NN_STEP, batches="torch.split(perm, 10)")),
    "hardcoded": ("hardcoded_curve", ADALINE3 + train_nn(NN_STEP, ret="return " + repr(PUBLISHED))),
    "last_minibatch": ("last_minibatch_loss",
                       ADALINE3 + train_nn(NN_STEP, record="cost.append(loss.item())")),
    "seed_each_epoch": ("seed_reset_each_epoch", ADALINE3 + train_nn(
        NN_STEP, seed_line="pass", epoch_seed="torch.manual_seed(seed)")),
    "stub": ("stub_untouched", code('''
        class Adaline3(torch.nn.Module):
            def __init__(self, num_features):
                super().__init__()
                raise NotImplementedError

        def train_nn(model, x, y, num_epochs, learning_rate=0.01, seed=123, minibatch_size=10):
            raise NotImplementedError
    ''')),
}

THRESHOLD_ZERO = code('''
    def compute_accuracy(model, x, y):
        with torch.no_grad():
            y_pred = model.forward(x)
            y_pred_label = torch.where(y_pred > 0.0, 1, 0)
            return torch.sum(y_pred_label == y).float() / y.size(0) * 100
''')

LECTURE = {"q1": Q1_LECTURE, "q2": Q2_LECTURE, "q3": Q3_LECTURE}


# --- fixtures and helpers ----------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def spy():
    """The spies patch torch process-wide: install them once, before any namespace is built."""
    return inprocess.spy()


@pytest.fixture(scope="session")
def data():
    return lecture_data.prepare_lecture_split()


@pytest.fixture(scope="session")
def settings():
    return grading_settings.load()


def grade(data, settings, replace: dict | None = None, extra_cells=(), seed=7, probe_wrapper=None):
    cells = dict(LECTURE, **(replace or {}))
    cell_list = [cells["q1"], cells["q2"], cells["q3"], *extra_cells]
    ns = inprocess.build_namespace(cell_list, data)
    assert ns["__cell_errors__"] == []
    probe = inprocess.make_probe(ns)
    if probe_wrapper is not None:
        probe = probe_wrapper(probe)
    return grade_questions(probe, inprocess.source_cells(cell_list), settings,
                           np.random.default_rng(seed), data)


def describe(results) -> str:
    return "\n".join(f"{q}: {r.score}/{r.max_score} {r.status} "
                     + "; ".join(f"{c.name}={'ok' if c.passed else 'FAIL'}[{c.diagnosis}] "
                                 f"{c.message.splitlines()[0][:160] if c.message else ''}"
                                 for c in r.checks)
                     for q, r in results.items())


# --- reference and data ----------------------------------------------------------------------

def test_split_matches_lecture_code(data):
    """The split equals the lecture's code run literally with the global torch RNG."""
    rows = lecture_data.load_iris_rows(lecture_data.DEFAULT_DATA)[50:150]
    X = torch.tensor([[r[0][1], r[0][2]] for r in rows], dtype=torch.float)
    y = torch.tensor([0 if r[1] == "Iris-versicolor" else 1 for r in rows], dtype=torch.int)
    torch.manual_seed(123)
    shuffle_idx = torch.randperm(y.size(0), dtype=torch.long)
    X, y = X[shuffle_idx], y[shuffle_idx]
    percent70 = int(shuffle_idx.size(0) * 0.7)
    X_train, X_test = X[shuffle_idx[:percent70]], X[shuffle_idx[percent70:]]
    y_train, y_test = y[shuffle_idx[:percent70]], y[shuffle_idx[percent70:]]
    mu, sigma = X_train.mean(dim=0), X_train.std(dim=0)
    assert torch.equal(data.X_train, (X_train - mu) / sigma)
    assert torch.equal(data.X_test, (X_test - mu) / sigma)
    assert torch.equal(data.y_train, y_train) and torch.equal(data.y_test, y_test)
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int32
    assert data.X_train.shape == (70, 2) and data.X_test.shape == (30, 2)
    lists = data.as_lists()
    assert torch.equal(torch.tensor(lists["X_train"], dtype=torch.float32), data.X_train)


def test_reference_reproduces_published_numbers(data):
    costs, w, b = reference.train_curve(data.X_train, data.y_train, 20, 0.01, 123, 10)
    assert [round(c, 5) for c in costs] == PUBLISHED
    train = reference.accuracy(reference.net_inputs(data.X_train, w, b), data.y_train)
    test = reference.accuracy(reference.net_inputs(data.X_test, w, b), data.y_test)
    assert round(train, 2) == 92.86 and round(test, 2) == 93.33
    assert w.shape == (2, 1) and b.shape == (1,)


def test_reference_shuffles_match_global_seed(data):
    """The reference's private generator draws what torch.manual_seed + randperm draws."""
    torch.manual_seed(5)
    expected = [torch.randperm(70, dtype=torch.long) for _ in range(3)]
    generator = torch.Generator().manual_seed(5)
    assert all(torch.equal(e, torch.randperm(70, dtype=torch.long, generator=generator))
               for e in expected)


@pytest.mark.parametrize("n,m", [(5, 1), (10, 2), (13, 4), (64, 7)])
def test_closed_form_matches_finite_differences_and_autograd(n, m):
    rng = np.random.default_rng(n * 100 + m)
    x, y = rng.normal(size=(n, m)), rng.integers(0, 2, n).astype(float)
    w, b = rng.normal(size=(m, 1)), rng.normal(size=1)
    gw, gb = reference.negative_gradients(x, reference.net_inputs(x, w, b), y)
    assert gw.shape == (m, 1) and gb.shape == (1,)
    nw, nb = reference.numerical_negative_gradients(x, w, b, y)
    # Relative error below 1e-7: the central difference of a quadratic is exact up to round-off.
    assert reference.relative_error(gw, nw) < 1e-7 and reference.relative_error(gb, nb) < 1e-7
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    loss = torch.mean((torch.tensor(x) @ tw + tb - torch.tensor(y).view(-1, 1)) ** 2)
    aw, ab = torch.autograd.grad(loss, [tw, tb])
    assert np.allclose(gw, -aw.numpy(), rtol=1e-12, atol=1e-14)
    assert np.allclose(gb, -ab.numpy(), rtol=1e-12, atol=1e-14)


def test_float32_drift_is_far_below_curve_tolerance(data):
    """A correct float32 run stays within 1e-5 relative of the float64 reference (the curve
    tolerance is 1e-4)."""
    torch.manual_seed(123)
    x, y = data.X_train, data.y_train
    w, b = torch.zeros(2, 1), torch.zeros(1)
    costs = []
    for _ in range(20):
        for idx in torch.split(torch.randperm(70, dtype=torch.long), 10):
            e = (x[idx] @ w).view(-1) + b - y[idx]
            w -= 0.01 * 2 * x[idx].t() @ e.view(-1, 1) / len(idx)
            b -= 0.01 * 2 * e.mean()
        costs.append(float(torch.mean(((x @ w).view(-1) + b - y) ** 2)))
    expected, _, _ = reference.train_curve(x, y, 20)
    drift = max(abs(a - e) / e for a, e in zip(costs, expected))
    assert drift < 1e-5 < common.CURVE_RTOL


def _float32_negative_gradients(spec):
    """Two correct float32 ways a student computes them: vectorised, and a per-row loop."""
    x, yhat, y = (torch.tensor(v, dtype=torch.float32) for v in (spec.x, spec.yhat, spec.y))
    e = yhat - y
    vectorised = (-2 * x.t() @ e.view(-1, 1) / len(y), -2 * e.mean().view(1))
    gw, gb = torch.zeros(spec.m, 1), torch.zeros(1)
    for i in range(spec.n):
        gw += 2 * e[i] * x[i].view(-1, 1)
        gb += 2 * e[i]
    return [vectorised, (-gw / spec.n, -gb / spec.n)]


def test_gradient_draws_leave_float32_answers_well_inside_tolerance():
    """Over 20,000 random q1 inputs, correct float32 gradients stay 100x inside GRADIENT_RTOL
    while a sign flip is off by about 2. Without the cancellation filter some draws put a
    correct bias gradient beyond 1e-4 (16 of 40,000 answers here), which this test catches."""
    worst, sign_flip_best = 0.0, np.inf
    for seed in range(20_000):
        spec = q1.backward_spec(np.random.default_rng(seed))
        expected_w, expected_b = reference.negative_gradients(spec.x, spec.yhat, spec.y)
        for gw, gb in _float32_negative_gradients(spec):
            worst = max(worst, reference.relative_error(gw.numpy(), expected_w),
                        reference.relative_error(gb.numpy(), expected_b))
            sign_flip_best = min(sign_flip_best,
                                 reference.relative_error(-gb.numpy(), expected_b),
                                 reference.relative_error(-gw.numpy(), expected_w))
    assert worst < q1.GRADIENT_RTOL / 100, worst
    assert sign_flip_best > 1.9, sign_flip_best


# Each classic backward mistake as a numpy function of (x, yhat, y) -> (grad_w (m, 1), grad_b),
# written from its description, not from the grader.
def _true_negative(x, yhat, y):
    e = yhat - y
    return -2 * x.T @ e[:, None] / len(y), np.array([-2 * e.mean()])


BACKWARD_MISTAKES = {
    "sign_flipped": lambda x, yhat, y: tuple(-g for g in _true_negative(x, yhat, y)),
    "sum_not_mean": lambda x, yhat, y: tuple(len(y) * g for g in _true_negative(x, yhat, y)),
    "missing_factor_2": lambda x, yhat, y: tuple(g / 2 for g in _true_negative(x, yhat, y)),
    "missing_two_over_n": lambda x, yhat, y: tuple(len(y) / 2 * g
                                                   for g in _true_negative(x, yhat, y)),
    "wrong_n": lambda x, yhat, y: tuple(len(y) / x.shape[1] * g
                                        for g in _true_negative(x, yhat, y)),
}


@pytest.mark.parametrize("mistake", BACKWARD_MISTAKES)
def test_backward_mistake_gets_its_diagnosis_on_every_draw(mistake):
    """2,000 random q1 inputs: the mistake always fails gradient_values with its own diagnosis
    (a one-element bias gradient can be near -1 or 0.5 times the true one by chance)."""
    wrong = []
    for seed in range(2_000):
        spec = q1.backward_spec(np.random.default_rng(seed))
        args = [np.asarray(v, dtype=np.float32) for v in (spec.x, spec.yhat, spec.y)]
        gw, gb = BACKWARD_MISTAKES[mistake](*args)
        data = {"grad_w": {"shape": list(gw.shape), "values": gw.reshape(-1).tolist()},
                "grad_b": {"shape": list(gb.shape), "values": gb.reshape(-1).tolist()}}
        result = q1._values_check(common.Outcome("backward", data), spec)
        if result.passed or result.diagnosis != mistake:
            wrong.append((seed, result.diagnosis))
    assert not wrong, wrong[:10]


# Each scale mistake's factor on a gradient, from its description: n = batch size, m = features.
SCALE_FACTORS = {"sign_flipped": lambda n, m: -1.0, "sum_not_mean": lambda n, m: n,
                 "missing_factor_2": lambda n, m: 0.5, "missing_two_over_n": lambda n, m: n / 2,
                 "wrong_n": lambda n, m: n / m}
WHICH = {"weight": "Your weight gradient ", "bias": "Your bias gradient ",
         "both": "Both your weight and your bias gradients "}


@pytest.mark.parametrize("which", WHICH)
@pytest.mark.parametrize("mistake", SCALE_FACTORS)
def test_scale_hint_names_the_gradient_that_is_off(mistake, which):
    """A scale mistake in only the bias gradient (or only the weight's, or both) gets its
    diagnosis with a hint that names exactly the gradient(s) that are off, never the other."""
    for seed in range(40):
        spec = q1.backward_spec(np.random.default_rng(seed))
        args = [np.asarray(v, dtype=np.float64) for v in (spec.x, spec.yhat, spec.y)]
        gw, gb = _true_negative(*args)
        factor = SCALE_FACTORS[mistake](spec.n, spec.m)
        gw = gw * factor if which in ("weight", "both") else gw
        gb = gb * factor if which in ("bias", "both") else gb
        data = {"grad_w": {"shape": list(gw.shape), "values": gw.reshape(-1).tolist()},
                "grad_b": {"shape": list(gb.shape), "values": gb.reshape(-1).tolist()}}
        result = q1._values_check(common.Outcome("backward", data), spec)
        assert not result.passed and result.diagnosis == mistake, (seed, result.diagnosis)
        hint = result.message.splitlines()[0]
        assert hint.startswith(WHICH[which]), (seed, hint)
        assert "Your gradient" not in result.message


def test_cancellation_measure_flags_nearly_cancelling_terms():
    x = np.ones((4, 3))
    balanced = np.array([0.5, 0.5, 0.5, 0.5]), np.array([1.0, 0.0, 1.0, 0.0])
    one_sided = np.array([0.5, 0.5, 0.5, 0.5]), np.array([1.0, 1.0, 0.0, 1.0])
    assert q1.cancellation(x, *balanced) == 0.0 < q1.CANCELLATION_FLOOR
    assert q1.cancellation(x, *one_sided) == pytest.approx(0.5)
    assert q1.cancellation(x, np.zeros(4), np.ones(4)) == 1.0


# --- grading: correct submissions --------------------------------------------------------------

def test_lecture_solution_gets_full_marks(data, settings):
    results = grade(data, settings)
    assert all(r.score == r.max_score and r.status == "passed" for r in results.values()), \
        describe(results)
    for result in results.values():
        assert result.curve is not None
        assert len(result.curve["student"]) == len(result.curve["reference"]) == 20
        assert [round(c, 5) for c in result.curve["reference"]] == PUBLISHED
    table = results["q1"].checks[2].message
    assert "epoch" in table and "reference" in table and "0.388" in table


@pytest.mark.parametrize("question,style", [("q1", s) for s in Q1_CORRECT]
                         + [("q2", s) for s in Q2_CORRECT] + [("q3", s) for s in Q3_CORRECT])
def test_correct_styles_get_full_marks(data, settings, question, style):
    implementations = {"q1": Q1_CORRECT, "q2": Q2_CORRECT, "q3": Q3_CORRECT}[question]
    results = grade(data, settings, {question: implementations[style]})
    assert all(r.score == r.max_score for r in results.values()), describe(results)


@pytest.mark.parametrize("seed", range(5))
def test_full_marks_for_any_random_draw(data, settings, seed):
    results = grade(data, settings, seed=seed)
    assert all(r.score == r.max_score for r in results.values()), describe(results)


# --- grading: wrong submissions ----------------------------------------------------------------

WRONG = ([("q1", k, *v) for k, v in Q1_WRONG.items()] + [("q2", k, *v) for k, v in Q2_WRONG.items()]
         + [("q3", k, *v) for k, v in Q3_WRONG.items()])


@pytest.mark.filterwarnings("ignore:Using a target size")  # the (n, 1) output mistake
@pytest.mark.parametrize("question,mistake,diagnosis,implementation", WRONG,
                         ids=[f"{q}-{k}" for q, k, _, _ in WRONG])
def test_wrong_implementations_lose_points_with_diagnosis(data, settings, question, mistake,
                                                          diagnosis, implementation):
    results = grade(data, settings, {question: implementation})
    result = results[question]
    assert result.score < result.max_score, describe(results)
    assert diagnosis in result.diagnoses, describe(results)
    for other, other_result in results.items():
        if other != question:
            assert other_result.score == other_result.max_score, describe(results)
    for check in result.checks:
        assert "lambda" not in check.message and "def " not in check.message


def test_notebook_function_named_grad_is_not_autograd(data, settings):
    """A hand-written helper called ``grad`` (shadowing torch's) is not automatic
    differentiation; q2 then reaches torch.autograd.grad through a module alias."""
    helper = code('''
        def grad(x, yhat, y):
            e = (yhat - y).view(-1, 1)
            return -2 * x.t() @ e / y.size(0), -(2 * e.sum() / y.size(0)).view(1)
    ''')
    results = grade(data, settings, {"q1": helper + adaline1("return grad(x, yhat, y)"),
                                     "q2": Q2_CORRECT["alias_module"]})
    assert all(r.score == r.max_score for r in results.values()), describe(results)


def test_method_violation_costs_exactly_the_configured_fraction(data, settings):
    """Right numbers by a forbidden method: every behavioural check passes and the rule takes
    the [method_rules] fraction of the points, no more; another fraction changes the cost."""
    import dataclasses

    q1_numbers_by_autograd = adaline1('''
        out = yhat.detach().clone().requires_grad_(True)
        loss = torch.mean((out - y) ** 2)
        (grad_out,) = torch.autograd.grad(loss, out)
        return -x.t() @ grad_out.view(-1, 1), -grad_out.sum().view(1)
    ''')
    q3_sgd_by_hand = ADALINE3 + train_nn('''
        loss = F.mse_loss(model(x[idx]), y[idx].float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for p in model.parameters():
                p -= learning_rate * p.grad
    ''', optimizer="torch.optim.SGD(model.parameters(), lr=0.0)")
    cases = (("q1", q1_numbers_by_autograd), ("q2", Q2_WRONG["backward"][1]),
             ("q3", q3_sgd_by_hand))
    for fraction in (0.5, 0.25):
        configured = dataclasses.replace(settings, method_rules={q: fraction for q in LECTURE})
        for question, implementation in cases:
            result = grade(data, configured, {question: implementation})[question]
            method = [c for c in result.checks if c.method_violation]
            assert len(method) == 1 and not method[0].passed, describe({question: result})
            assert all(c.passed for c in result.checks if not c.method_violation), \
                describe({question: result})
            assert result.score == pytest.approx(result.max_score * (1 - fraction)), \
                describe({question: result})


def test_a_bug_is_scored_by_its_checks_not_zeroed_by_the_method_rule(data, settings):
    """q3 without zero_grad, or with a hard-coded minibatch size, keeps the credit of its
    passing checks: the method rule is about the method only."""
    for implementation in (Q3_WRONG["no_zero_grad"][1], Q3_WRONG["minibatch_ignored"][1]):
        result = grade(data, settings, {"q3": implementation})["q3"]
        assert all(c.passed for c in result.checks if c.method_violation), describe({"q3": result})
        earned = sum(c.weight for c in result.checks if c.passed)
        total = sum(c.weight for c in result.checks)
        assert 0 < result.score == pytest.approx(result.max_score * earned / total)


def test_given_code_is_the_graders_own_copy(data, settings):
    """A notebook that edits (or deletes) the given compute_accuracy is graded on its own
    functions only."""
    results = grade(data, settings, extra_cells=[THRESHOLD_ZERO, "del train_manual\n"])
    assert all(r.score == r.max_score for r in results.values()), describe(results)


def _function_source(text: str, name: str) -> str:
    node = next(n for n in ast.parse(text).body
                if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(text, node)


class _Outputs:
    """A model whose forward returns fixed outputs."""

    def __init__(self, outputs):
        self.outputs = outputs

    def forward(self, x):
        return self.outputs


@pytest.mark.parametrize("shape", [(5,), (5, 1)])
def test_given_compute_accuracy_compares_one_output_per_label(shape):
    """The notebook's compute_accuracy is the grader's copy word for word, and counts one
    output per label whether forward returns (n,) or (n, 1) (an (n, 1) output compared with
    (n,) labels would broadcast to an (n, n) table: 48 % here); other counts are an error."""
    import nbformat
    from adaline_kit.build import paths

    master = nbformat.read(paths.MASTER_NOTEBOOK, as_version=4)
    helpers = next(c.source for c in master.cells if c.get("id") == "helpers")
    given = _function_source(helpers, "compute_accuracy")
    assert given == _function_source(inprocess.GIVEN_CODE, "compute_accuracy")
    namespace = {"torch": torch}
    exec(given, namespace)
    # Predictions 1, 0, 1, 0, 1 against labels 1, 0, 0, 0, 1: 4 of 5 right.
    outputs = torch.tensor([0.9, 0.2, 0.7, 0.4, 0.6]).view(shape)
    labels = torch.tensor([1, 0, 0, 0, 1], dtype=torch.int)
    assert namespace["compute_accuracy"](_Outputs(outputs), None, labels) == pytest.approx(80.0)
    # The hidden checks' rule on the same outputs agrees.
    assert reference.accuracy(outputs.reshape(-1).numpy(), labels.numpy()) == pytest.approx(80.0)
    with pytest.raises(ValueError, match="4 outputs for 5 labels"):
        namespace["compute_accuracy"](_Outputs(outputs[:4]), None, labels)


Q3_RESETS = {
    "set_to_none_by_hand": '''
        for p in model.parameters():
            p.grad = None
        loss = F.mse_loss(model(x[idx]), y[idx].float())
        loss.backward()
        optimizer.step()
    ''',
    "zero_after_step": '''
        loss = F.mse_loss(model(x[idx]), y[idx].float())
        loss.backward()
        optimizer.step()
        for p in model.parameters():
            p.grad.zero_()
    ''',
    "guarded_zero": '''
        for p in model.parameters():
            if p.grad is not None:
                p.grad.zero_()
        loss = F.mse_loss(model(x[idx]), y[idx].float())
        loss.backward()
        optimizer.step()
    ''',
}


@pytest.mark.parametrize("style", Q3_RESETS)
def test_gradient_resets_are_judged_by_what_happened(data, settings, style):
    results = grade(data, settings, {"q3": ADALINE3 + train_nn(Q3_RESETS[style])})
    assert all(r.score == r.max_score for r in results.values()), describe(results)


@pytest.mark.parametrize("cheat", ["unused_grad_call", "sgd_lr_zero"])
def test_token_calls_break_the_method_rule(data, settings, cheat):
    """A grad() whose result is not used, or an SGD that does not move the parameters, does not
    satisfy the rule although the call appears."""
    if cheat == "unused_grad_call":
        question, implementation = "q2", train_autograd('''
            yhat = model.forward(x[idx])
            loss = loss_func(yhat, y[idx])
            grad(loss, [model.weight, model.bias])
            e = (yhat - y[idx]).detach().view(-1, 1)
            with torch.no_grad():
                model.weight -= learning_rate * 2 * x[idx].t() @ e / len(idx)
                model.bias -= learning_rate * 2 * e.sum().view(1) / len(idx)
        ''')
        diagnosis = "grad_result_unused"
    else:
        question, implementation = "q3", ADALINE3 + train_nn(code(NN_STEP) + code('''
            with torch.no_grad():
                for p in model.parameters():
                    p -= learning_rate * p.grad
        '''), optimizer="torch.optim.SGD(model.parameters(), lr=0)")
        diagnosis = "sgd_not_used"
    result = grade(data, settings, {question: implementation})[question]
    method = next(c for c in result.checks if c.method_violation)
    assert not method.passed and method.diagnosis == diagnosis, describe({question: result})
    assert result.penalty > 0 and result.score < result.max_score


@pytest.mark.parametrize("cheat", ["repeat_aware", "hand_bias"])
def test_updates_that_do_not_follow_grad_break_the_rule(data, settings, cheat):
    """Updates that mimic grad()'s marked results without using them, or use them only in
    part, break the rule; the rest of q2 (the numbers) passes, so the charge is the rule's."""
    # The corpus's cases (adversarial/repeat_aware_q2, hand_bias_q2): a thrown-away grad()
    # beside hand-made steps that halve themselves when a run other than the lecture's repeats
    # (it passed while the marked run repeated the other-data run), and grad()'s weight
    # gradient with a hand-made bias step.
    if str(CORPUS) not in sys.path:
        sys.path.insert(0, str(CORPUS))
    import cases_adversarial

    implementation = {"repeat_aware": cases_adversarial.REPEAT_AWARE_Q2,
                      "hand_bias": cases_adversarial.HAND_BIAS_Q2}[cheat]["train_autograd"]
    for seed in (7, 11, 12):
        result = grade(data, settings, {"q2": implementation}, seed=seed)["q2"]
        method = next(c for c in result.checks if c.method_violation)
        assert not method.passed and method.diagnosis == "grad_result_unused", \
            describe({"q2": result})
        assert "did not follow" in method.message
        assert all(c.passed for c in result.checks if not c.method_violation), \
            describe({"q2": result})
        assert result.score == pytest.approx(
            result.max_score * (1 - settings.method_rules["q2"]))


def test_marked_run_is_drawn_like_an_ordinary_run():
    """The marked run has data and a seed of its own, drawn like the other-data run's; its
    scale lies in the range and varies, and every order of q2's three runs occurs."""
    orders, scales = set(), set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        other = common.other_spec(rng)
        marking = q2.marking_spec(rng, other)
        spec = marking.spec
        assert spec.seed != other.seed and spec.x != other.x
        assert spec.learning_rate in (0.02, 0.03, 0.05) and spec.n % spec.minibatch_size
        assert q2.GRAD_MARK_RANGE[0] <= marking.scale <= q2.GRAD_MARK_RANGE[1]
        assert sorted(marking.order) == sorted(q2.RUNS)
        orders.add(marking.order)
        scales.add(round(marking.scale, 6))
    assert len(orders) == 6 and len(scales) == 40


def _marked_outcome(data, implementation: str, marking) -> common.Outcome:
    """The marked run of ``implementation`` (a train_autograd) through the in-process probe."""
    ns = inprocess.build_namespace([LECTURE["q1"], implementation, LECTURE["q3"]], data)
    args = dict(marking.spec.probe_args(), grad_scale=marking.scale)
    return common.Outcome("the marked run", data=inprocess.make_probe(ns)("q2_train", args))


def test_marked_run_judgement_against_the_reference(data):
    """Updates that use grad()'s results train like the reference with learning rate lr x s:
    judged True for every correct style; a loop that ignores them (it trains like lr) is judged
    False; a loop wrong anyway (steps twice too long) is no evidence unless its unmarked run
    was right; an unmarked run (no spy) is no evidence."""
    rng = np.random.default_rng(5)
    marking = q2.marking_spec(rng, common.other_spec(rng))
    for style, implementation in Q2_CORRECT.items():
        assert q2.follows_grad(_marked_outcome(data, implementation, marking), marking,
                               other_matched=True) is True, style
    ignoring = train_autograd('''
        yhat = model.forward(x[idx])
        grad(loss_func(yhat, y[idx]), [model.weight, model.bias])
        e = (yhat - y[idx]).detach().view(-1, 1)
        with torch.no_grad():
            model.weight -= learning_rate * 2 * x[idx].t() @ e / len(idx)
            model.bias -= learning_rate * 2 * e.sum().view(1) / len(idx)
    ''')
    assert q2.follows_grad(_marked_outcome(data, ignoring, marking), marking, True) is False
    assert q2.follows_grad(_marked_outcome(data, ignoring, marking), marking, False) is False
    ascending = train_autograd(GRAD_STEP.replace("- learning", "+ learning"))
    outcome = _marked_outcome(data, ascending, marking)
    assert q2.follows_grad(outcome, marking, other_matched=False) is None
    assert q2.follows_grad(outcome, marking, other_matched=True) is False
    unmarked = common.Outcome("unmarked", data=dict(outcome.data, grad_scaled=False))
    assert q2.follows_grad(unmarked, marking, other_matched=True) is None


def test_stub_gets_error_status_and_zero(data, settings):
    results = grade(data, settings, {"q3": Q3_WRONG["stub"][1]})
    assert results["q3"].status == "error" and results["q3"].score == 0
    assert results["q3"].curve["student"] == [] and len(results["q3"].curve["reference"]) == 20
    assert "NotImplementedError" in results["q3"].checks[0].message


def test_int_labels_in_mse_loss_are_accepted(data, settings):
    """torch 2.13 promotes int targets in F.mse_loss: the lecture's int labels work unconverted."""
    results = grade(data, settings, {"q3": Q3_CORRECT["int_labels_promote"]})
    assert results["q3"].score == results["q3"].max_score, describe(results)


def test_messages_report_first_epoch_and_amount(data, settings):
    result = grade(data, settings, {"q2": Q2_WRONG["seed_each_epoch"][1]})["q2"]
    curve = next(c for c in result.checks if c.name == "lecture_curve")
    assert "epoch 2" in curve.message and "reference" in curve.message and "%" in curve.message
    shapes = grade(data, settings, {"q1": Q1_WRONG["transposed"][1]})["q1"].checks[0]
    assert "expected" in shapes.message and ", 1)" in shapes.message


# --- probe failures ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["timeout", "crash", "memory", "error"])
def test_probe_failure_only_affects_its_question(data, settings, kind):
    calls = []

    def wrapper(probe):
        def wrapped(name, args):
            calls.append(name)
            if name.startswith("q2"):
                raise ProbeFailure(kind, f"simulated {kind}")
            return probe(name, args)
        return wrapped

    results = grade(data, settings, probe_wrapper=wrapper)
    assert results["q2"].status == kind and results["q2"].score == 0
    assert f"simulated {kind}" in results["q2"].checks[0].message
    assert results["q1"].status == results["q3"].status == "passed", describe(results)
    if kind != "error":  # after a timeout, crash or memory failure the question stops probing
        assert calls.count("q2_train") == 1


def test_malformed_probe_data_only_affects_its_question(data, settings):
    def wrapper(probe):
        return lambda name, args: {"spy": {}} if name == "q2_train" else probe(name, args)

    results = grade(data, settings, probe_wrapper=wrapper)
    assert results["q2"].status == "error" and results["q2"].score == 0
    assert "not what the grader asked for" in results["q2"].checks[0].message
    assert results["q1"].status == results["q3"].status == "passed"


def test_grader_bug_is_reported_as_such(data, settings, monkeypatch):
    """A failure inside the grader itself (not a malformed reply) asks to be reported."""
    def broken(context, setup):
        raise RuntimeError("simulated grader bug")

    monkeypatch.setitem(GRADERS, "q2", broken)
    results = grade(data, settings)
    assert results["q2"].status == "error" and results["q2"].score == 0
    message = results["q2"].checks[0].message
    assert "grader could not evaluate" in message and "simulated grader bug" in message
    assert "not what the grader asked for" not in message
    assert results["q1"].status == results["q3"].status == "passed"


def test_selected_questions_only(data, settings):
    results = grade_questions(inprocess.make_probe(inprocess.build_namespace([], data)), [],
                              settings, np.random.default_rng(0), data, questions=("q2",))
    assert list(results) == ["q2"] and results["q2"].status == "error"


def test_source_as_one_string(data, settings):
    cells = [LECTURE["q1"], LECTURE["q2"], LECTURE["q3"]]
    ns = inprocess.build_namespace(cells, data)
    source = "\n".join(inprocess.source_cells(cells))
    results = grade_questions(inprocess.make_probe(ns), source, settings,
                              np.random.default_rng(3), data)
    assert all(r.score == r.max_score for r in results.values()), describe(results)


# --- source rules ------------------------------------------------------------------------------

Q1_CHEATS = {
    "engine_on_parameter": '''
        w = torch.nn.Parameter(torch.zeros(x.size(1), 1))
        loss = torch.mean((x @ w - y.view(-1, 1)) ** 2)
        torch._C._ImperativeEngine().run_backward((loss,), (None,), False, False, (w,), False, False)
    ''',
    "fork": '''
        import os
        pid = os.fork()
    ''',
    "names_from_strings": '''
        module = __import__("torch." + "func", fromlist=["x"])
        jac = getattr(module, "jac" + "fwd")
    ''',
    "forward_ad": '''
        import torch.autograd.forward_ad as fwAD
        with fwAD.dual_level():
            pass
    ''',
    "importlib": '''
        import importlib
        functional = importlib.import_module("torch.func")
    ''',
    "eval": '''
        g = eval("torch.autograd." + "grad")
    ''',
    "requires_grad_on_input": '''
        x.requires_grad_()
    ''',
    "subprocess": '''
        import subprocess
    ''',
    "multiprocessing_helper": '''
        run_elsewhere(x)
    ''',
}


@pytest.mark.parametrize("cheat", Q1_CHEATS)
def test_q1_rule_is_an_allow_list_that_follows_the_code(cheat):
    helper = ("import multiprocessing\n\ndef run_elsewhere(x):\n"
              "    return multiprocessing.Pool(1)\n\n")
    body = code(Q1_CHEATS[cheat]) + "e = (yhat - y).view(-1, 1)\nreturn -2 * x.t() @ e, None\n"
    source = inprocess.source_cells([helper + adaline1(body)])
    findings = source_rules.q1_rule_findings(source_rules.index_source(source))
    assert findings, cheat


# Code that stores a function where backward reaches it without naming the notebook's function:
# (top-level code, how backward calls it). Each stored function uses torch.autograd.grad.
Q1_STORED = {
    "torch_namespace": ("torch.linalg.step = autograd_step\n", "torch.linalg.step(x, yhat, y)"),
    "builtins": ("import builtins\nbuiltins.step = autograd_step\n", "step(x, yhat, y)"),
    "globals": ("globals()['step'] = autograd_step\n", "step(x, yhat, y)"),
    "variable": ("step = make_step(autograd_step)\n", "step(x, yhat, y)"),
    "variable_from_factory": ("step = make_autograd_step()\n", "step(x, yhat, y)"),
    "lambda": ("step = lambda x, yhat, y: torch.autograd.grad(yhat.sum(), x)\n",
               "step(x, yhat, y)"),
}
Q1_HELPERS = ("import torch\n\ndef autograd_step(x, yhat, y):\n"
              "    return torch.autograd.grad(yhat.sum(), x)\n\n"
              "def plain_step(x, yhat, y):\n"
              "    e = (yhat - y).view(-1, 1)\n    return -2 * x.t() @ e / y.size(0), None\n\n"
              "def make_step(function):\n    return function\n\n"
              "def make_autograd_step():\n    return autograd_step\n\n")


@pytest.mark.parametrize("way", Q1_STORED)
def test_q1_rule_follows_functions_stored_where_backward_finds_them(way):
    storing, call = Q1_STORED[way]
    source = inprocess.source_cells([Q1_HELPERS + storing, adaline1(f"return {call}\n")])
    findings = source_rules.q1_rule_findings(source_rules.index_source(source))
    assert findings, way
    # The same ways of reaching plain arithmetic break nothing.
    honest = storing.replace("= autograd_step", "= plain_step").replace(
        "(autograd_step)", "(plain_step)").replace("torch.autograd.grad(yhat.sum(), x)",
                                                  "(x, yhat)")
    source = inprocess.source_cells([Q1_HELPERS.replace("return autograd_step",
                                                        "return plain_step") + honest,
                                     adaline1(f"return {call}\n")])
    findings = source_rules.q1_rule_findings(source_rules.index_source(source))
    if way in ("torch_namespace", "builtins", "globals"):
        assert findings, way  # what a library or the builtins hold is not the notebook's
    else:
        assert findings == [], (way, findings)


def test_q1_rule_allows_real_library_names_and_notebook_variables():
    body = code('''
        e = (yhat - y).view(-1, 1) * SCALE
        norm = torch.linalg.norm(e) + np.float32(0) + math.pi * 0
        return -2 * x.t() @ e / y.size(0), -2 * e.sum().view(1) / y.size(0) + norm * 0
    ''')
    top = ("import math\nimport numpy as np\nimport pandas as pd\nimport os\n"
           "frame = pd.DataFrame({'a': [1.0]})\nSCALE = float(frame['a'][0])\n"
           "path = os.path.join('data', 'iris.data')\n")
    source = inprocess.source_cells([top, adaline1(body)])
    assert source_rules.q1_rule_findings(source_rules.index_source(source)) == []


def test_q1_rule_allows_what_mentions_autograd_without_using_it():
    """A notebook function named grad, a local variable named grad, reading .requires_grad and
    asking for requires_grad=False are all tensor arithmetic."""
    helper = "def grad(e, x):\n    return x.t() @ e\n\n"
    body = code('''
        grad_local = 2 * (yhat - y).view(-1, 1) / y.size(0)
        assert not x.requires_grad
        zeros = torch.zeros(1, requires_grad=False)
        return -grad(grad_local, x), zeros - grad_local.sum().view(1)
    ''')
    source = inprocess.source_cells([helper + adaline1(body)])
    assert source_rules.q1_rule_findings(source_rules.index_source(source)) == []


def test_source_rules_resolve_aliases_and_last_definition():
    cells = [
        "import torch\nimport torch.autograd as ag\nfrom torch.autograd import grad as g\n",
        "def train_autograd(m):\n    m.loss.backward()\n",
        "def broken(:\n",  # does not parse: skipped
        "def helper(loss, w):\n    return g(loss, w)\n",
        "def train_autograd(m):\n    return helper(m.loss, m.w), ag.grad(m.loss, m.w)\n",
        "train_nn = train_autograd\n",
    ]
    index = source_rules.index_source(cells)
    assert index.unparsable == [2]
    found = source_rules.usage(index, "train_autograd")
    assert source_rules.calls_autograd_grad(found) and not source_rules.calls_backward(found)
    assert source_rules.usage(index, "train_nn").found
    whole = source_rules.index_source("\n".join(cells))  # one string with a syntax error in it
    assert source_rules.calls_autograd_grad(source_rules.usage(whole, "train_autograd"))


def test_source_rules_q1_allows_own_backward_and_lecture_code():
    index = source_rules.index_source(inprocess.source_cells([Q1_LECTURE]))
    assert source_rules.q1_rule_findings(index) == []
    helper = ("def helper(x):\n    return deeper(x)\n\ndef deeper(x):\n"
              "    return x.requires_grad_()\n\n"
              "class Adaline1:\n    def backward(self, x, yhat, y):\n"
              "        self.backward(x, yhat, y)\n        return helper(x)\n")
    findings = source_rules.q1_rule_findings(source_rules.index_source([helper]))
    assert findings == [".requires_grad_() (in deeper)"]


def _shuffles_after_a_loader(**loader_options) -> bool:
    """Whether seeded torch.randperm draws are the same with a DataLoader iterated between."""
    torch.manual_seed(5)
    first, expected = torch.randperm(20), torch.randperm(20)
    torch.manual_seed(5)
    assert torch.equal(torch.randperm(20), first)
    list(torch.utils.data.DataLoader(first, batch_size=4, **loader_options))
    return torch.equal(torch.randperm(20), expected)


def test_dataloader_diagnosis_names_the_global_random_draw():
    """Iterating a DataLoader draws from torch's global generator even with shuffle=False (the
    fact, checked on torch itself), so the diagnosis says so for any DataLoader and gives
    both fixes; its own generator keeps the shuffles."""
    assert not _shuffles_after_a_loader(shuffle=False)
    assert not _shuffles_after_a_loader(shuffle=True)
    assert _shuffles_after_a_loader(shuffle=False, generator=torch.Generator())
    loader = ("def train_nn(model, x, y, num_epochs, learning_rate=0.01, seed=123, "
              "minibatch_size=10):\n    torch.manual_seed(seed)\n"
              "    for batch in torch.utils.data.DataLoader(torch.randperm(y.size(0)), "
              "batch_size=minibatch_size, shuffle=False):\n        pass\n")
    evidence = runs.loop_evidence(source_rules.index_source(["import torch\n" + loader]),
                                  "train_nn")
    key, message = diagnoses.diagnose(evidence, diagnoses.TRAINING_LOOP)
    assert key == "dataloader_shuffle"
    assert "shuffling or not, draws a random number from torch's global generator" in message
    assert "torch.split(shuffle_idx, minibatch_size)" in message
    assert "generator=torch.Generator()" in message
    assert "DataLoader that shuffles" not in message
    plain = loader.replace("torch.utils.data.DataLoader(", "torch.split(").replace(
        "batch_size=minibatch_size, shuffle=False", "minibatch_size")
    evidence = runs.loop_evidence(source_rules.index_source(["import torch\n" + plain]),
                                  "train_nn")
    assert evidence["dataloader"] is False and diagnoses.diagnose(
        evidence, diagnoses.TRAINING_LOOP) is None


def test_catalogue_has_required_diagnoses():
    required = {"sum_not_mean", "sign_flipped", "missing_factor_2", "bias_not_reduced",
                "weight_transposed", "params_never_change", "gradients_accumulate", "ascending",
                "learning_rate_ignored", "seed_reset_each_epoch", "full_batch", "random_init",
                "other_optimizer", "output_shape_n1", "integer_labels", "missing_two_over_n",
                "wrong_n", "momentum", "dataloader_shuffle", "seed_missing",
                "grad_result_unused", "sgd_not_used", "last_minibatch_loss",
                "hardcoded_curve", "uses_autograd", "uses_backward_not_grad", "stub_untouched"}
    assert required <= set(diagnoses.BY_KEY)
    assert len(diagnoses.BY_KEY) == len(diagnoses.CATALOGUE)


# --- speed ----------------------------------------------------------------------------------------

def test_grading_is_fast(data, settings):
    grade(data, settings)  # warm up torch and the reference cache
    start = time.process_time()
    results = grade(data, settings, seed=11)
    elapsed = time.process_time() - start
    assert all(r.score == r.max_score for r in results.values())
    assert elapsed < 1.0, f"grading took {elapsed:.2f} s of CPU"


def test_lecture_checks_earn_credit_only_with_the_other_data_run():
    from adaline_kit.assignments.adaline_autograd.checks import credit_lecture_checks
    from adaline_kit.outcomes import CheckResult, QuestionResult

    def checks(other_passed):
        return [CheckResult("gradient_values", False, 2.0), CheckResult("lecture_curve", True, 2.0),
                CheckResult("lecture_accuracy", True, 1.0),
                CheckResult("other_data", other_passed, 2.0)]

    faked = QuestionResult.from_checks("q1", 4.0, credit_lecture_checks(checks(False)))
    honest = QuestionResult.from_checks("q1", 4.0, credit_lecture_checks(checks(True)))
    assert faked.score == 0.0
    assert "other data" in faked.checks[1].message
    assert honest.score == round(4.0 * 5 / 7, 4)


@pytest.mark.parametrize("text,message", [
    ("[weights.q1]\nlecture_curv = 2\n", "unknown checks in [weights.q1]"),
    ("[weights.q4]\nother_data = 2\n", "unknown questions in [weights]"),
    ("[weights.q2]\nother_data = -1\n", "must be a number >= 0"),
    ("[weights.q2]\nother_data = \"two\"\n", "must be a number >= 0"),
    ("[weights.q3]\nmodule_structure = 0\nzero_init = 0\noutput_shape = 0\nlecture_curve = 0\n"
     "lecture_accuracy = 0\nother_data = 0\n", "every check weight 0"),
    ("[method_rules]\nq1 = 1.5\n", "fraction from 0 to 1"),
    ("[method_rules]\nq9 = 0.5\n", "unknown questions in [method_rules]"),
])
def test_bad_weights_and_method_rules_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "grading.toml"
    path.write_text("[points]\nq1 = 4\nq2 = 3\nq3 = 3\n" + text)
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        grading_settings.load(path)
    assert "\n" not in str(raised.value)


def test_weights_and_method_rules_are_read():
    path_text = ("[points]\nq1 = 4\nq2 = 3\nq3 = 3\n[weights.q1]\nother_data = 5\n"
                 "[method_rules]\nq2 = 0.25\n")
    import tempfile, pathlib
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "grading.toml"
        path.write_text(path_text)
        loaded = grading_settings.load(path)
    assert loaded.weights["q1"]["other_data"] == 5.0
    assert loaded.weights["q1"]["gradient_values"] == 2.0  # unchanged default
    assert loaded.method_rules == {"q1": 0.5, "q2": 0.25, "q3": 0.5}


def test_cell_magics_run_as_in_jupyter(tmp_path, monkeypatch):
    """%%time and %%capture run their body; %%writefile writes the file without running it;
    %time runs its statement; other magics stay no-ops (a stand-in get_ipython)."""
    from IPython.core.inputtransformer2 import TransformerManager

    from adaline_kit.grade import magics

    monkeypatch.chdir(tmp_path)
    cells = ["%%time\ndef timed():\n    return 1\n",
             "%%capture out\ndef captured():\n    return 2\nprint('hidden')\n",
             "%%writefile helper.py\ndef written():\n    return 3\n",
             "%matplotlib inline\n%time answer = timed() + captured()\n",
             "%%timeit\nnever = 1\n"]
    calls = []

    class Shell:
        def __getattr__(self, name):
            return lambda *args: calls.append((name, args[0]))

    namespace = {"get_ipython": lambda: Shell()}
    for cell in cells:
        exec(compile(magics.expand(TransformerManager().transform_cell(cell)), "<cell>", "exec"),
             namespace)
    assert namespace["answer"] == 3 and "out" in namespace
    assert (tmp_path / "helper.py").read_text() == "def written():\n    return 3\n"
    assert "written" not in namespace and "never" not in namespace
    assert calls == [("run_line_magic", "matplotlib"), ("run_cell_magic", "timeit")]
