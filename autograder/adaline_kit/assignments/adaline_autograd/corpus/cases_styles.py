"""Correct submissions in many styles (group ``correct``): every question must get full marks.

Each case is the reference solution with one part written another correct way, or the whole
notebook rearranged the way students do (extra cells, a failing exploration cell, cells moved or
merged). ``casebook.py`` writes them to ``correct/``.
"""

from __future__ import annotations

import nbformat

from casebook import Case, _top_level_span
from edits import adaline1_with_backward, cell_after, code, edit

FULL = {"q1": "full", "q2": "full", "q3": "full"}

# The definitions a student writes or runs for the three parts (given ones included).
PART_DEFINITIONS = ("Adaline1", "train_manual", "Adaline2", "train_autograd", "Adaline3",
                    "train_nn")


def correct(name: str, description: str, **fields) -> Case:
    return Case(name=name, group="correct", description=description, expect=dict(FULL),
                **fields)


def _defines_part(cell) -> bool:
    return cell.cell_type == "code" and any(_top_level_span(cell.source, name)
                                            for name in PART_DEFINITIONS)


def definitions_last(notebook):
    """Move the cells defining the parts to the end: the training cells run first (and report
    a NameError through run_part), the definitions come after them."""
    moved = [cell for cell in notebook.cells if _defines_part(cell)]
    notebook.cells = [cell for cell in notebook.cells if not _defines_part(cell)] + moved
    return notebook


def one_big_cell(notebook):
    """All code in one cell after the notebook's text cells, in the original order."""
    code_cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    notebook.cells = [cell for cell in notebook.cells if cell.cell_type != "code"]
    notebook.cells.append(nbformat.v4.new_code_cell("\n\n\n".join(code_cells)))
    return notebook


def with_magics(notebook):
    """%%time / %%capture on the cells defining Adaline1 and train_nn, line magics elsewhere."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if _top_level_span(cell.source, "Adaline1"):
            cell.source = "%%time\n" + cell.source
        elif _top_level_span(cell.source, "train_nn"):
            cell.source = "%%capture captured\n" + cell.source
        elif _top_level_span(cell.source, "train_autograd"):
            cell.source = "%matplotlib inline\n%time two = 1 + 1\n" + cell.source
    return notebook


FAILING_EXPLORATION = code('''
    # Trying things out: what does backward give for the first three flowers?
    probe_model = Adaline1(num_features=2)
    print(probe_model.backward(X_train[:3], probe_model.forward(X_train[:3]), y_train[:3]))
    print(torch.mm(X_train, X_train))  # oops: (70, 2) @ (70, 2) does not fit
''')


EXPLORATION = [
    code('''
        # Exploration: the data.
        print(X_train[:5])
        print("class balance in training:", torch.bincount(y_train.long()).tolist())
        plt.figure(figsize=(4, 3))
        plt.scatter(X_train[:, 0], X_train[:, 1], c=y_train, cmap="coolwarm")
        plt.xlabel("sepal width (standardised)")
        plt.ylabel("petal length (standardised)")
        plt.show()
    '''),
    code('''
        # Exploration: one gradient by hand against autograd, on five flowers.
        check_model = Adaline1(num_features=2)
        check_model.weight += 0.1
        xb, yb = X_train[:5], y_train[:5]
        mine = check_model.backward(xb, check_model.forward(xb), yb)
        w = check_model.weight.clone().requires_grad_(True)
        b = check_model.bias.clone().requires_grad_(True)
        auto = torch.autograd.grad(loss_func((xb @ w).view(-1) + b, yb), [w, b])
        print("by hand:", [g.view(-1).tolist() for g in mine])
        print("autograd (negated):", [(-g).view(-1).tolist() for g in auto])
    '''),
    code('''
        # Exploration: the final losses and a bigger learning rate.
        for label, costs in (("part 1", costs1), ("part 2", costs2), ("part 3", costs3)):
            print(label, "final loss", float(costs[-1]))
        fast = Adaline3(num_features=2)
        fast_costs = train_nn(fast, X_train, y_train, num_epochs=5, learning_rate=0.1)
        plot_losses(fast_costs, "learning rate 0.1")
        print("test accuracy with lr 0.1:", compute_accuracy(fast, X_test, y_test))
    '''),
]


CASES = [
    correct("reference", "The lecture's own style: the reference solution as it is."),
    # --- q1: Adaline1.backward -------------------------------------------------------------
    correct("q1_matmul_transpose", "q1 with the @ operator and .T, gradients as column sums.",
            replace=adaline1_with_backward('''
                err = (yhat - y).reshape(-1, 1)
                n = x.shape[0]
                return -2 * x.T @ err / n, -2 * err.sum(dim=0) / n
            ''')),
    correct("q1_per_sample_loop", "q1 with a Python loop over the samples of the minibatch.",
            replace=adaline1_with_backward('''
                negative_grad_w = torch.zeros(self.num_features, 1)
                negative_grad_b = torch.zeros(1)
                n = x.size(0)
                for i in range(n):
                    error = float(yhat[i] - y[i])
                    negative_grad_w -= 2 * error * x[i].view(-1, 1) / n
                    negative_grad_b -= 2 * error / n
                return negative_grad_w, negative_grad_b
            ''')),
    correct("q1_einsum", "q1 with torch.einsum for the weight gradient and mean for the bias.",
            replace=adaline1_with_backward('''
                error = yhat - y
                grad_w = torch.einsum("nm,n->m", x, error).unsqueeze(1) * 2 / len(y)
                grad_b = (2 * error).mean().unsqueeze(0)
                return -grad_w, -grad_b
            ''')),
    correct("q1_float64", "q1 computing the gradients in float64 inside backward (the update "
            "casts them back into the float32 parameters).",
            replace=adaline1_with_backward('''
                x64, error = x.double(), yhat.double() - y.double()
                grad_w = 2.0 * torch.matmul(x64.t(), error.view(-1, 1)) / y.numel()
                grad_b = 2.0 * error.mean().view(1)
                return -grad_w, -grad_b
            ''')),
    correct("q1_recomputes_forward", "q1 recomputing the outputs with self.forward(x) instead "
            "of its yhat argument: the docstring defines yhat as forward(x), so this is the "
            "same number.",
            replace=edit("Adaline1", ("grad_loss_yhat = 2 * (yhat - y)",
                                      "grad_loss_yhat = 2 * (self.forward(x) - y)"))),
    correct("q1_local_grad_helper", "q1 with a local function named grad inside backward "
            "(shadowing the imported torch.autograd.grad), reading .requires_grad and asking "
            "for requires_grad=False: no autograd is used.",
            replace=adaline1_with_backward('''
                def grad(x, error):
                    """dL/dw of the MSE: (2/n) X^T (yhat - y), shape (m, 1)."""
                    return 2 * x.t() @ error / x.size(0)

                assert not self.weight.requires_grad  # plain tensors, as given
                error = (yhat - y).view(-1, 1)
                negative_grad_b = torch.zeros(1, requires_grad=False)
                negative_grad_b -= 2 * error.mean()
                return -grad(x, error), negative_grad_b
            ''')),
    # --- q2: train_autograd -----------------------------------------------------------------
    correct("q2_grad_one_call", "q2 with one torch.autograd.grad(loss, [w, b]) call for both "
            "gradients (no retain_graph needed).",
            replace=edit("train_autograd", (
                "            negative_grad_w = grad(loss, model.weight, retain_graph=True)[0] * (-1)\n"
                "            negative_grad_b = grad(loss, model.bias)[0] * (-1)\n",
                "            grad_w, grad_b = torch.autograd.grad(loss, [model.weight, model.bias])\n"
                "            negative_grad_w, negative_grad_b = -grad_w, -grad_b\n"))),
    correct("q2_inplace_no_grad", "q2 updating the parameters in place under torch.no_grad(), "
            "so they stay leaf tensors.",
            replace=edit("train_autograd", (
                "            model.weight = model.weight + learning_rate * negative_grad_w\n"
                "            model.bias = model.bias + learning_rate * negative_grad_b\n",
                "            with torch.no_grad():\n"
                "                model.weight += learning_rate * negative_grad_w\n"
                "                model.bias += learning_rate * negative_grad_b\n"))),
    correct("q2_helper_alias", "q2 with the gradient step in a helper function that imports "
            "grad under another name (from torch.autograd import grad as autograd_grad).",
            replace=edit("train_autograd", (
                "            loss = loss_func(yhat, y[minibatch_idx])\n"
                "            negative_grad_w = grad(loss, model.weight, retain_graph=True)[0] * (-1)\n"
                "            negative_grad_b = grad(loss, model.bias)[0] * (-1)\n",
                "            negative_grad_w, negative_grad_b = negative_gradients(\n"
                "                model, yhat, y[minibatch_idx])\n")),
            add_cells=[code('''
                from torch.autograd import grad as autograd_grad


                def negative_gradients(model, yhat, y):
                    loss = loss_func(yhat, y)
                    grad_w, grad_b = autograd_grad(loss, (model.weight, model.bias))
                    return -grad_w, -grad_b
            ''')]),
    # --- q3: Adaline3 and train_nn ------------------------------------------------------------
    correct("q3_init_zeros", "q3 zeroing the layer with nn.init.zeros_.",
            replace=edit("Adaline3", (
                "        self.linear.weight.detach().zero_()\n"
                "        self.linear.bias.detach().zero_()\n",
                "        torch.nn.init.zeros_(self.linear.weight)\n"
                "        torch.nn.init.zeros_(self.linear.bias)\n"))),
    correct("q3_no_grad_init", "q3 zeroing the layer under torch.no_grad() with fill_, and "
            "squeeze(1) instead of view(-1).",
            replace=edit("Adaline3",
                         ("        self.linear.weight.detach().zero_()\n"
                          "        self.linear.bias.detach().zero_()\n",
                          "        with torch.no_grad():\n"
                          "            self.linear.weight.fill_(0.0)\n"
                          "            self.linear.bias.fill_(0.0)\n"),
                         ("return self.linear(x).view(-1)", "return self.linear(x).squeeze(1)"))),
    correct("q3_sequential", "q3 with the nn.Linear inside an nn.Sequential.",
            replace=edit("Adaline3",
                         ("        self.linear = torch.nn.Linear(num_features, 1)\n",
                          "        self.net = torch.nn.Sequential(torch.nn.Linear(num_features, 1))\n"
                          "        self.linear = self.net[0]\n"),
                         ("return self.linear(x).view(-1)", "return self.net(x).view(-1)"))),
    correct("q3_set_to_none", "q3 resetting the gradients with zero_grad(set_to_none=True) at "
            "the start of each step, and the optimizer imported from torch.optim.",
            replace=edit("train_nn",
                         ("    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)\n",
                          "    optimizer = SGD(model.parameters(), lr=learning_rate)\n"),
                         ("            yhat = model(x[batch])  # calling the module runs forward\n",
                          "            optimizer.zero_grad(set_to_none=True)\n"
                          "            yhat = model(x[batch])  # calling the module runs forward\n"),
                         ("            optimizer.zero_grad()  # reset the gradients of the previous step\n",
                          "")),
            add_cells=["from torch.optim import SGD\n"]),
    correct("q3_forward_method", "q3 calling model.forward(x) as the lecture's slides do (the "
            "reference calls model(x), so both styles are covered).",
            replace=edit("train_nn", ("yhat = model(x[batch])", "yhat = model.forward(x[batch])"),
                         ("F.mse_loss(model(x), y.float())", "F.mse_loss(model.forward(x), y.float())"))),
    correct("q3_int_labels_mse", "q3 passing the integer labels to F.mse_loss without .float(): "
            "torch 2.13 promotes the int target to float, so the loss and its gradients are "
            "exactly those of y.float() (verified); this is not a mistake.",
            replace=edit("train_nn", ("F.mse_loss(yhat, y[batch].float())", "F.mse_loss(yhat, y[batch])"),
                         ("F.mse_loss(model(x), y.float())", "F.mse_loss(model(x), y)"))),
    correct("q3_grad_none_by_hand", "q3 resetting the gradients by hand (p.grad = None for "
            "every parameter before backward) instead of optimizer.zero_grad().",
            replace=edit("train_nn", (
                "            optimizer.zero_grad()  # reset the gradients of the previous step\n",
                "            for parameter in model.parameters():\n"
                "                parameter.grad = None\n"))),
    correct("q3_zero_after_step", "q3 zeroing the gradients after optimizer.step() with "
            "p.grad.zero_(), guarded for the first step.",
            replace=edit("train_nn",
                         ("            optimizer.zero_grad()  # reset the gradients of the previous step\n", ""),
                         ("            optimizer.step()  # parameter -= lr * parameter.grad, for weight and bias\n",
                          "            optimizer.step()\n"
                          "            for parameter in model.parameters():\n"
                          "                if parameter.grad is not None:\n"
                          "                    parameter.grad.zero_()\n"))),
    correct("q3_dataloader_own_generator", "q3 cutting the torch.randperm order into "
            "minibatches with a DataLoader(shuffle=False) that has its own generator, so "
            "iterating it draws nothing from torch's global generator.",
            replace=edit("train_nn", (
                "torch.split(order, minibatch_size)",
                "torch.utils.data.DataLoader(order, batch_size=minibatch_size, shuffle=False,\n"
                "                                                 generator=torch.Generator())"))),
    # --- whole notebook -------------------------------------------------------------------------
    correct("edits_given_helpers", "The given compute_accuracy rewritten (threshold 0) and "
            "train_manual deleted at the end: the grader uses its own copy of given code, so "
            "only the student's functions are graded.",
            replace=edit("compute_accuracy", ("(outputs > 0.5)", "(outputs > 0)")),
            add_cells=["del train_manual\n"]),
    correct("cell_magics", "The cells defining Adaline1 and train_nn start with %%time and "
            "%%capture, the one defining train_autograd has a %time line and a %matplotlib "
            "line magic: all run in Jupyter, so they run in grading.",
            transform=with_magics),
    correct("float_cost_lists", "q2 and q3 return lists of Python floats (.item() and float()) "
            "instead of 0-dim tensors.",
            replace={**edit("train_autograd", ("cost.append(curr_loss)", "cost.append(curr_loss.item())")),
                     **edit("train_nn", ("cost.append(curr_loss)", "cost.append(float(curr_loss))"))}),
    correct("exploration_cells", "Extra exploration cells at the end: prints, a scatter plot, a "
            "gradient check against autograd, another training run with its plot.",
            add_cells=EXPLORATION),
    correct("failing_exploration_cell", "An unrelated exploration cell that raises (a shape "
            "error in a matrix product) right after Part 1; everything else is correct.",
            transform=cell_after(FAILING_EXPLORATION, "Adaline1")),
    correct("definitions_last", "Cells reordered: the cells defining Adaline1, train_manual, "
            "Adaline2, train_autograd, Adaline3 and train_nn moved to the end, after the training "
            "cells (which then fail with a NameError that run_part reports).",
            transform=definitions_last),
    correct("one_big_cell", "All code merged into one big cell (the text cells kept).",
            transform=one_big_cell),
]
